"""Reading the job's server-sent event stream, as the service writes it."""

from recon.client.events import ServerEvent, parse_events


def test_events_with_ids_keepalives_and_multiline_data() -> None:
    stream = [
        ": keep-alive", "",
        "id: 3", "event: progress", 'data: {"a": 1}', "",
        "id: 4", "event: succeeded", "data: one", "data:two", "",
        "id: 5", "event: progress", "data: cut off before its blank line",
    ]
    assert list(parse_events(stream)) == [
        ServerEvent("progress", '{"a": 1}', "3"),
        ServerEvent("succeeded", "one\ntwo", "4"),
    ]


def test_an_event_without_a_name_is_a_message_and_one_without_data_is_nothing() -> None:
    assert list(parse_events(["data: x", "", "event: empty", ""])) == [
        ServerEvent("message", "x", None)]
