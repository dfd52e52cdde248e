"""Settings as clients send them: flat initialization options, or VS Code's nested configuration sections."""

from __future__ import annotations

from remapdsl_server.lsp.settings import Settings, parse_settings


def test_flat_initialization_options_are_read() -> None:
    settings, problems = parse_settings({"storePath": "s.db", "autoTrain": False, "debounceMs": 50})
    assert problems == []
    assert settings == Settings(store_path="s.db", auto_train=False, debounce_ms=50)


def test_vscode_nested_sections_are_read_like_the_flat_names() -> None:
    raw = {"remap": {"server": {"interpreter": "/usr/bin/python3"}, "store": {"path": "/x.db"},
                     "training": {"autoTrain": False, "startWorker": True}, "hover": {"images": False}}}
    settings, problems = parse_settings(raw)
    assert problems == []
    assert settings == Settings(store_path="/x.db", auto_train=False, start_worker=True, hover_images=False)


def test_a_bad_nested_value_is_named_by_its_setting_and_keeps_the_old_value() -> None:
    base = Settings(auto_train=False)
    settings, problems = parse_settings({"training": {"autoTrain": "yes"}, "store": {"path": ""}}, base)
    assert settings.auto_train is False and settings.store_path is None
    assert len(problems) == 1 and "'training.autoTrain'" in problems[0] and "keeping False" in problems[0]
