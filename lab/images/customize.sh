#!/bin/sh
# Runs inside the debootstrapped root (chroot) to turn it into a lab node:
# a systemd machine with a deliberately weak, hand-built-cluster SSH setup.
set -eu
# It rewrites accounts and sshd settings: never let it touch a real host.
[ "${1:-}" = --inside-image-chroot ] || { echo "customize.sh runs only inside build-images' chroot" >&2; exit 2; }

# The "before" state the roles harden: passwords and root login allowed.
cat > /etc/ssh/sshd_config.d/00-lab-weak.conf <<'CONF'
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication yes
CONF

# Debian ships an "operator" system group; the account joins it.
useradd --create-home --shell /bin/bash --gid operator --groups sudo operator
echo 'operator:operator' | chpasswd
echo 'root:root' | chpasswd
echo 'operator ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/operator
chmod 0440 /etc/sudoers.d/operator

# Host keys are made per container at first boot, never baked into the image.
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/lab-ssh-hostkeys.service <<'CONF'
[Unit]
Description=Generate SSH host keys on first boot
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service ssh.socket

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
CONF
systemctl enable lab-ssh-hostkeys.service

# Units that make no sense in a container.
for unit in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    getty@tty1.service console-getty.service systemd-timesyncd.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "/etc/systemd/system/$unit"
done
systemctl enable ssh.service
# containerd starts only on lab nodes, once node-setup.sh has configured it
# (Molecule scenarios boot the same image and need no runtime).
systemctl disable containerd.service

: > /etc/machine-id
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
