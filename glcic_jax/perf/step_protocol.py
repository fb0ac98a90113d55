"""Time two processes' steps in turns: the line protocol between bench_train.py and its workers.

(And `run_once`, for bench_ablation.py's workers, which time on their own.)

Machines here drift by 10-20% within minutes, so timing all of our steps and
then all of the reference's makes the ratio depend on when each ran. Each
worker compiles and warms up, says it is ready, then runs one step per
"step" line it reads and answers with the seconds it took ("warm": the same,
untimed); "done" ends it with a summary. bench_train.py alternates the two
workers: in each turn one untimed step, then one timed step. A step right
after the process sat idle is slower than in a steady run, ours more than the
reference's (at 256 px b1 phase 1, +40 ms after the other side's step and
+160 ms after a 1 s pause; the reference's +0 and +27 ms), and training
never sits idle between steps.

No imports beyond the standard library: the reference's worker runs in a
venv with torch and without this project's dependencies.
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time


def step_summary(times: list, batch_size: int) -> dict:
    med = statistics.median(times)
    return dict(
        img_per_sec=batch_size / med,
        step_ms_median=1e3 * med,
        step_ms_min=1e3 * min(times),
        step_ms_max=1e3 * max(times),
    )


def serve(step, warmup: int, summary) -> None:
    """Worker side: warm up, then answer "step" and "done" lines on stdin.

    `summary(times)` returns the final JSON object (a dict).
    """
    for _ in range(warmup):
        step()
    print(json.dumps({"ready": True}), flush=True)
    times = []
    for line in sys.stdin:
        if line.strip() == "warm":
            step()
            print(json.dumps({"warm": True}), flush=True)
        elif line.strip() == "step":
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
            print(json.dumps({"step_s": times[-1]}), flush=True)
        elif line.strip() == "done":
            print(json.dumps(summary(times)), flush=True)
            return


def _failed(cmd: list, stderr: str) -> RuntimeError:
    return RuntimeError(f"{' '.join(cmd[:3])} failed: {stderr.strip()[-800:]}")


def run_once(cmd: list, env=None) -> dict:
    """Run a worker that times on its own and return the last JSON line it printed."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        raise _failed(cmd, out.stderr)
    return json.loads(lines[-1])


class Worker:
    """Parent side: one worker process, driven a step at a time."""

    def __init__(self, cmd: list, env=None):
        self.cmd = cmd
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )

    def _reply(self) -> dict:
        for line in self._proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        self._proc.wait()
        self._stderr.seek(0)
        raise _failed(self.cmd, self._stderr.read())

    def _send(self, command: str) -> dict:
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        return self._reply()

    def wait_ready(self) -> None:
        self._reply()

    def step(self, settle: int = 0) -> float:
        """Seconds of one step, after `settle` untimed ones."""
        for _ in range(settle):
            self._send("warm")
        return self._send("step")["step_s"]

    def finish(self) -> dict:
        summary = self._send("done")
        self._proc.wait()
        self._stderr.close()
        return summary

    def kill(self) -> None:
        self._proc.kill()
        self._proc.wait()


def take_turns(commands: list, steps: int, settle: int = 1) -> list:
    """Start and warm up each worker in turn (so compiling is timed alone), then in
    each round a turn for each worker, alternating which goes first: `settle`
    untimed steps and one timed step. Returns the workers' summaries.

    `commands` is a list of (argv, env) pairs.
    """
    workers = []
    try:
        for cmd, env in commands:
            workers.append(Worker(cmd, env))
            workers[-1].wait_ready()
        for i in range(steps):
            for worker in workers if i % 2 == 0 else workers[::-1]:
                worker.step(settle)
        return [worker.finish() for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
