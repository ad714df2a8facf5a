"""A worker that ignores stop requests, to prove that the process group is killed."""

import signal
import subprocess
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(sys.argv[1] + "/child.pid", "w") as fh:
    fh.write(str(child.pid))
time.sleep(120)
