"""How bench/availability.py counts the lab clients' requests: one per time-stamped line, nc's stderr is the reason."""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "availability.py"
spec = importlib.util.spec_from_file_location("availability_bench", BENCH)
availability = importlib.util.module_from_spec(spec)
spec.loader.exec_module(availability)


def test_a_refused_request_counts_once_with_nc_s_reason():
    log = [
        "16:23:50 HTTP/1.1 200 OK web-7d9c-abcde",
        "nc: can't connect to remote host (10.110.95.17): Connection refused",
        "16:23:51  ",
        "16:23:52 HTTP/1.1 200 OK web-7d9c-fghij",
    ]
    requests, failed = availability.parse_client_log(log)
    assert requests == 3
    assert failed == ["16:23:51 (nc: can't connect to remote host (10.110.95.17): Connection refused)"]


def test_a_timeout_and_an_error_status_are_failures_and_a_200_is_not():
    log = ["12:04:31  ", "12:04:35 HTTP/1.1 503 Service Unavailable ", "12:04:36 HTTP/1.1 200 OK web-1"]
    assert availability.parse_client_log(log) == (3, ["12:04:31", "12:04:35 HTTP/1.1 503 Service Unavailable"])


def test_an_empty_log_has_no_requests():
    assert availability.parse_client_log([]) == (0, [])
