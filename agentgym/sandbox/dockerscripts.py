"""What runs inside a docker sandbox's container as root: its set-up, kill and reset scripts.

Kept apart from :mod:`agentgym.sandbox.docker` (which drives the container through the
daemon) so the shell that decides what survives an episode reads in one place: the set-up
copies the pristine source in and snapshots the result, the kill script ends every process
of the ``agent`` user even under a full pids limit, and the reset goes back to the
snapshot leaving no process, file, SysV IPC object or message queue behind.
"""

from __future__ import annotations

from agentgym.sandbox.base import SNAPSHOT_DIR

#: Where a repo image (``sandboxes/repo/Dockerfile``) keeps the pristine source, root-only.
SOURCE_DIR = "/var/lib/agentgym/src"
#: The environment of every command run in the container.
ENV = {"HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "USER": "agent",
       "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
#: Run as root once per container: copy the pristine source in, run the spec's set-up as
#: the agent, then keep a root-owned copy of the result as the snapshot.
INIT_SCRIPT = f"""set -e
if [ -d {SOURCE_DIR} ]; then cp -a {SOURCE_DIR}/. "$WORK"/; fi
chown -R agent:agent "$WORK"
cd "$WORK"
setpriv --reuid=agent --regid=agent --clear-groups --inh-caps=-all bash -ec "$1"
cp -a "$WORK"/. {SNAPSHOT_DIR}/
chown -R root:root {SNAPSHOT_DIR} && chmod 0755 {SNAPSHOT_DIR}
"""
#: Run as root: stop every agent process (so a fork bomb cannot refill), then kill them all,
#: until none is left. Bash builtins only: when a fork bomb has filled the container's pids
#: limit, pgrep and pkill cannot even start (the old script's pgrep failed, read as "none left").
KILL_SCRIPT = r"""
AU=; while IFS=: read -r n _ u _; do [ "$n" = agent ] && AU=$u; done < /etc/passwd
for ((round = 0; round < 100; round++)); do
  pids=()
  for d in /proc/[0-9]*; do
    u=; { while read -r k a _; do [ "$k" = Uid: ] && { u=$a; break; }; done < "$d/status"; } 2>/dev/null
    if [ -n "$AU" ] && [ "$u" = "$AU" ]; then pids+=("${d#/proc/}"); kill -STOP "${d#/proc/}" 2>/dev/null; fi
  done
  [ ${#pids[@]} -eq 0 ] && break
  kill -9 "${pids[@]}" 2>/dev/null
done
true
"""
#: Run as root to go back to the snapshot: no process, no file, no SysV IPC object and no
#: message queue of the last episode survives (all are per container, not per exec).
RESET_SCRIPT = KILL_SCRIPT + f"""
setpriv --reuid=agent --regid=agent --clear-groups --inh-caps=-all ipcrm --all 2>/dev/null
find /dev/mqueue /dev/shm -mindepth 1 -delete 2>/dev/null
find "$WORK" /tmp -mindepth 1 -delete && cp -a {SNAPSHOT_DIR}/. "$WORK"/ && chown -R agent:agent "$WORK"
"""
