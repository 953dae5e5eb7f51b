"""What the console script does to every log line, whatever part wrote it."""

import subprocess
import sys


def test_the_cli_masks_card_numbers_in_every_log_line():
    code = ("import logging, sys; from gateway.cli import main; "
            "sys.argv=['centralino','--log-level','INFO','db','--help']; "
            "import click\n"
            "try:\n    main(standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "logging.getLogger('x').warning('caller said 4556 7375 8689 9855 and 4556737586899855')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "4556 7375 8689 9855" not in r.stderr and "4556737586899855" not in r.stderr
    assert "9855" in r.stderr  # the last four stay, so a call can still be matched
