from pathlib import Path

import pytest

from rescnn_appliance.cli import main
from rescnn_appliance.config import EX_CONFIG, ConfigError, load_settings


def test_defaults_then_file_then_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "appliance.toml"
    cfg.write_text('[player]\nvolume = 40\n[camera]\nsource = "demo"\n')
    s = load_settings(cfg, {"player.volume": 55})
    assert s.player.volume == 55
    assert s.camera.source == "demo"
    assert s.recommend.mood_weight == 0.7


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[player]\nvolum = 3\n", "unknown setting player.volum"),
        ("[nope]\n", "unknown section [nope]"),
        ('[player]\nvolume = "loud"\n', "player.volume must be a int"),
        ('[playback]\ntarget = "sideways"\n', "playback.target must be one of"),
        ("[player\n", "invalid TOML"),
        ("[models]\nthreads = -1\n", "models.threads must not be negative"),
    ],
)
def test_bad_file_names_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert str(cfg) in str(err.value)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_state_directory_from_systemd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "svc"))
    assert load_settings(None).database_path == tmp_path / "svc" / "library.sqlite"


def test_cli_exits_78_on_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[camera]\nfps = true\n")
    assert main(["--config", str(cfg), "doctor"]) == EX_CONFIG
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "camera.fps" in err


def test_cli_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "absent.toml"), "doctor"]) == EX_CONFIG
    assert "config file not found" in capsys.readouterr().err
