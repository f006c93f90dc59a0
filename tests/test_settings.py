"""Settings.from_env: the function's environment, read once, validated, with clear errors."""

from __future__ import annotations

import pytest

from core.settings import (
    DEFAULT_EVENT_SOURCES,
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    Settings,
    SettingsError,
    parse_event_sources,
)

OPSWORKS = frozenset({"opsworks.amazonaws.com", "opsworks-cm.amazonaws.com"})


def test_only_table_name_set_gives_the_documented_defaults() -> None:
    settings = Settings.from_env({"TABLE_NAME": "events"})

    assert settings.table_name == "events"
    assert settings.event_sources == OPSWORKS
    assert frozenset(DEFAULT_EVENT_SOURCES) == OPSWORKS
    assert settings.max_decompressed_bytes == 512 * 1024 * 1024 == DEFAULT_MAX_DECOMPRESSED_BYTES
    assert settings.retention_days is None


def test_from_env_without_a_mapping_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "from-process-env")
    monkeypatch.setenv("RETENTION_DAYS", "30")

    settings = Settings.from_env()

    assert settings.table_name == "from-process-env"
    assert settings.retention_days == 30


@pytest.mark.parametrize("env", [{}, {"TABLE_NAME": ""}, {"TABLE_NAME": "   "}])
def test_missing_or_blank_table_name_is_an_error_naming_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="TABLE_NAME"):
        Settings.from_env(env)


def test_table_name_is_stripped() -> None:
    assert Settings.from_env({"TABLE_NAME": "  events \n"}).table_name == "events"


def test_max_decompressed_bytes_is_read_as_a_whole_number() -> None:
    settings = Settings.from_env({"TABLE_NAME": "t", "MAX_DECOMPRESSED_BYTES": " 1048576 "})

    assert settings.max_decompressed_bytes == 1_048_576


@pytest.mark.parametrize("raw, reason", [
    ("lots", "not a whole number"),
    ("1.5e9", "not a whole number"),
    ("512MiB", "not a whole number"),
    ("-1", "at least 1"),
    ("0", "at least 1"),  # a zero cap would fail every non-empty file
])
def test_bad_max_decompressed_bytes_is_an_error_with_the_value_and_reason(raw: str, reason: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"TABLE_NAME": "t", "MAX_DECOMPRESSED_BYTES": raw})

    message = str(caught.value)
    assert "MAX_DECOMPRESSED_BYTES" in message
    assert repr(raw) in message
    assert reason in message


def test_blank_max_decompressed_bytes_means_the_default() -> None:
    settings = Settings.from_env({"TABLE_NAME": "t", "MAX_DECOMPRESSED_BYTES": "  "})

    assert settings.max_decompressed_bytes == DEFAULT_MAX_DECOMPRESSED_BYTES


@pytest.mark.parametrize("raw, expected", [("", None), ("0", None), ("7", 7), ("365", 365)])
def test_retention_days_zero_or_unset_keeps_forever(raw: str, expected: int | None) -> None:
    assert Settings.from_env({"TABLE_NAME": "t", "RETENTION_DAYS": raw}).retention_days == expected


@pytest.mark.parametrize("raw", ["-3", "a week", "7.5"])
def test_bad_retention_days_is_an_error(raw: str) -> None:
    with pytest.raises(SettingsError, match="RETENTION_DAYS"):
        Settings.from_env({"TABLE_NAME": "t", "RETENTION_DAYS": raw})


@pytest.mark.parametrize("raw", ["all", "ALL", " All "])
def test_event_sources_all_selects_every_record(raw: str) -> None:
    assert Settings.from_env({"TABLE_NAME": "t", "EVENT_SOURCES": raw}).event_sources is None


def test_event_sources_list_is_split_on_commas_and_trimmed() -> None:
    settings = Settings.from_env({"TABLE_NAME": "t",
                                  "EVENT_SOURCES": " opsworks.amazonaws.com , s3.amazonaws.com,,"})

    assert settings.event_sources == frozenset({"opsworks.amazonaws.com", "s3.amazonaws.com"})


def test_blank_event_sources_means_the_opsworks_defaults() -> None:
    assert Settings.from_env({"TABLE_NAME": "t", "EVENT_SOURCES": "  "}).event_sources == OPSWORKS


@pytest.mark.parametrize("raw", ["opsworks", "opsworks.amazonaws.com,ec2", "all,opsworks.amazonaws.com"])
def test_event_sources_that_are_not_event_source_names_are_an_error(raw: str) -> None:
    with pytest.raises(SettingsError, match="not an eventSource"):
        Settings.from_env({"TABLE_NAME": "t", "EVENT_SOURCES": raw})


@pytest.mark.parametrize("raw", [",", " , ,"])
def test_event_sources_naming_nothing_is_an_error_not_a_filter_that_keeps_nothing(raw: str) -> None:
    with pytest.raises(SettingsError, match="names no eventSource"):
        parse_event_sources(raw)


def test_settings_are_immutable() -> None:
    settings = Settings.from_env({"TABLE_NAME": "t"})

    with pytest.raises(AttributeError):
        settings.table_name = "other"  # type: ignore[misc]
