"""SIGTERM stops a command the way Ctrl-C does: its cleanup runs, and it says so in one line."""

import signal
import subprocess
import sys
import time


def test_sigterm_runs_cleanup_and_exits_143():
    # `play` waits for the player's move on stdin, which stays open: only the signal ends it
    proc = subprocess.Popen([sys.executable, "-m", "agentgym.cli", "play", "maze/v0", "--seed", "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline()  # the first observation is out: it is waiting for a move
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == "agentgym: terminated"
    assert "Traceback" not in err
