"""``common.logs``: the levels of -q / default / -v, the formatter, ``muted`` and the bars."""
import argparse
import io
import logging

import pytest

from common.logs import add_verbosity_args, level_of, muted, progress_bars, setup_logging


def _parse(*argv):
    return add_verbosity_args(argparse.ArgumentParser(prog="t")).parse_args(list(argv))


@pytest.mark.parametrize("argv, level, root, ours", [
    ((), logging.INFO, logging.INFO, logging.INFO),
    (("-q",), logging.WARNING, logging.WARNING, logging.WARNING),
    (("--quiet",), logging.WARNING, logging.WARNING, logging.WARNING),
    (("-v",), logging.DEBUG, logging.INFO, logging.DEBUG),
    (("--verbose",), logging.DEBUG, logging.INFO, logging.DEBUG),
])
def test_levels_of_the_flags(argv, level, root, ours):
    args = _parse(*argv)
    assert level_of(args) == level
    assert setup_logging(args) == level
    assert logging.getLogger().level == root
    # our packages (and a `python -m` module's own logger) open DEBUG only with -v ...
    for name in ("retraining.runner", "datasets.prepare", "__main__"):
        assert logging.getLogger(name).getEffectiveLevel() == ours
    # ... third-party loggers never go below INFO
    assert logging.getLogger("matplotlib.font_manager").getEffectiveLevel() == root


def test_quiet_and_verbose_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exc:
        _parse("-q", "-v")
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_one_handler_plain_info_prefixed_warnings_on_current_stderr(capsys):
    setup_logging(_parse())
    setup_logging(_parse("-v"))  # a second main() in the process reconfigures, never doubles
    setup_logging(_parse())
    log = logging.getLogger("exp_scripts.some_tool")
    log.debug("hidden %d", 1)
    log.info("method %s: %d iterations", "pas", 3)
    log.warning("the folder %s is stale", "x")
    log.error("it failed")
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["method pas: 3 iterations", "warning: the folder x is stale", "error: it failed"]
    setup_logging(_parse("-q"))
    log.info("progress")
    log.warning("still shown")
    assert capsys.readouterr().err.splitlines() == ["warning: still shown"]


def test_setup_logging_needs_args_or_level():
    with pytest.raises(ValueError, match="needs args"):
        setup_logging()
    assert setup_logging(level=logging.WARNING) == logging.WARNING and logging.getLogger().level == logging.WARNING


def test_muted_passes_warnings_restores_the_level_and_yields_to_verbose(caplog):
    setup_logging(_parse())
    inner = logging.getLogger("retraining.runner")
    with muted("retraining"):
        assert not inner.isEnabledFor(logging.INFO) and inner.isEnabledFor(logging.WARNING)
    assert inner.isEnabledFor(logging.INFO) and logging.getLogger("retraining").level == logging.NOTSET
    setup_logging(_parse("-v"))
    with muted("retraining"):
        assert inner.isEnabledFor(logging.DEBUG)


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_need_a_terminal_info_lines_and_no_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    log = logging.getLogger("classification_models.training")
    setup_logging(_parse())
    assert progress_bars(log, stream=_Tty()) is True
    assert progress_bars(log, stream=io.StringIO()) is False  # redirected to a file or pipe
    monkeypatch.setenv("CI", "true")
    assert progress_bars(log, stream=_Tty()) is False
    monkeypatch.setenv("CI", "false")
    setup_logging(_parse("-q"))
    assert progress_bars(log, stream=_Tty()) is False
    setup_logging(_parse())
    with muted("classification_models"):
        assert progress_bars(log, stream=_Tty()) is False  # a caller muted the training
    assert progress_bars(log, stream=_Tty()) is True
