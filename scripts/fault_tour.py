"""A tour of the faults a user can meet, each tried on real `prefrl` commands: what the
user is told, the exit code, and whether any label was lost.

    python scripts/fault_tour.py [--out docs/reliability] [--only NAME ...] [--seed S]

Prints a table and writes OUT/faults.csv (the data behind docs/reliability.md). Runs
are small Pendulum runs (a few seconds each); the whole tour takes a few minutes on two
cores. Disk-full and read-only cases need root (a tmpfs mount); they are skipped, and
say so, without it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

SMALL = ["--clip-length", "25", "--quiet", "--no-video", "--ppo", "num_envs=2", "--ppo", "num_steps=256"]
SMALL += ["--reward-model", "epochs_per_round=2"]
RUN = ["Pendulum-v1", "--steps", "8192", "--labels", "20", *SMALL]
LONG_RUN = ["Pendulum-v1", "--steps", "40000", "--labels", "40", *SMALL]  # still running when stopped
COLUMNS = ("fault", "command", "exit_code", "told", "labels", "kept_every_label", "outcome")


class Tour:
    def __init__(self, root: Path, seed: int):
        self.root, self.rng = root, random.Random(seed)
        self.rows: list[dict[str, object]] = []

    # ---------------------------------------------------------------- helpers
    def prefrl(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "prefrl.cli", *args], capture_output=True, text=True, timeout=timeout
        )

    def start(
        self, *args: str, env: dict[str, str] | None = None, stdout: int = subprocess.DEVNULL
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "prefrl.cli", *args],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=None if env is None else {**os.environ, **env},
        )

    def run_dir(self, name: str) -> Path:
        return self.root / name

    def record(
        self, fault: str, command: str, result: subprocess.CompletedProcess[str] | None, **extra: object
    ) -> None:
        told = ""
        if result is not None:  # the last line prefrl itself printed
            lines = result.stderr.strip().splitlines()
            told = next((line for line in reversed(lines) if line.startswith("prefrl")), "")
        row = {
            "fault": fault,
            "command": command,
            "exit_code": None if result is None else result.returncode,
            "told": told,
            **extra,
        }
        self.rows.append(row)
        print(f"- {fault}: exit {row['exit_code']}, {row.get('outcome', '')}", flush=True)

    @staticmethod
    def labels(run: Path) -> tuple[int, int] | None:
        try:
            summary = json.loads((run / "summary.json").read_text())
            return summary["labels_used"], summary["labels_budget"]
        except (OSError, ValueError, KeyError):
            return None

    @staticmethod
    def answered(run: Path) -> set[int]:
        db = run / "prefs.sqlite"
        if not db.exists():
            return set()
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return {row[0] for row in conn.execute("SELECT query_id FROM answers")}
        except sqlite3.OperationalError:  # the run has made the file, not yet its tables
            return set()
        finally:
            conn.close()

    @staticmethod
    def role_pid(run: Path, role: str) -> int | None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return int(json.loads((run / "status.json").read_text())["role_pids"][role])
        return None

    # ----------------------------------------------------------------- faults
    def kill_role(self, role: str, sig: int = signal.SIGKILL) -> None:
        """``role`` sent ``sig`` up to 3 times at random moments: SIGKILL, or SIGSTOP (hung;
        the run is told to end a role silent for 5 s)."""
        stop = sig == signal.SIGSTOP
        run = self.run_dir(f"{'stop' if stop else 'kill'}-{role}")
        proc = self.start(
            "train",
            *RUN,
            "--run-dir",
            str(run),
            env={"PREFRL_HANG_S": "5"} if stop else None,
            stdout=subprocess.PIPE if stop else subprocess.DEVNULL,
        )
        kills, killed, before = 0, set(), set()
        for _ in range(3):
            time.sleep(self.rng.uniform(1.0, 5.0))
            pid = self.role_pid(run, role)
            deadline = time.monotonic() + 15
            while (pid is None or pid in killed) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
                pid = self.role_pid(run, role)
            if proc.poll() is not None or pid is None or pid in killed:
                break
            before = self.answered(run)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                kills += 1
            killed.add(pid)
        out, err = proc.communicate(timeout=300)
        told = [line for line in (out or "").splitlines() if " hung: " in line]
        result = subprocess.CompletedProcess(proc.args, proc.returncode, "", "\n".join(told[-1:]) or err)
        used = self.labels(run)
        # a role stopped after its job is done is left be: one hung line is enough
        restarted = not stop or kills == 0 or len(told) >= 1
        self.record(
            f"{'SIGSTOP' if stop else 'kill -9'} of the {role} process, {kills} times at random moments",
            f"{'PREFRL_HANG_S=5 ' if stop else ''}prefrl train {' '.join(RUN[:5])} ...; "
            f"{'kill -STOP' if stop else 'kill -9'} <{role} pid from status.json>",
            result,
            labels=used,
            kept_every_label=before <= self.answered(run),
            outcome=(
                f"run completed, ended as hung and restarted {len(told)} times"
                if stop
                else "run completed, restarted each time"
            )
            if proc.returncode == 0 and used and used[0] == used[1] and restarted
            else "FAILED",
        )

    def kill_parent(self) -> None:
        run = self.run_dir("kill-parent")
        proc = self.start("train", *LONG_RUN, "--run-dir", str(run))
        self.wait_for_labels(run, 6)
        pids = [self.role_pid(run, role) for role in ("agent", "labeler", "reward_trainer")]
        before = self.answered(run)
        proc.kill()
        proc.wait()
        gone_at = time.monotonic()
        while any(p and _alive(p) for p in pids) and time.monotonic() - gone_at < 10:
            time.sleep(0.05)
        children_s = time.monotonic() - gone_at
        _, err = proc.communicate(timeout=60)
        result = self.prefrl("resume", str(run), "--quiet", "--no-video")
        used = self.labels(run)
        self.record(
            "kill -9 of the main process, then prefrl resume",
            "kill -9 <prefrl train pid>; prefrl resume RUN",
            result,
            labels=used,
            kept_every_label=before <= self.answered(run),
            outcome=f"its processes gone {children_s:.1f} s later; {'no' if 'leaked' not in err else 'LEAKED'} "
            f"semaphores; resume {'completed' if result.returncode == 0 else 'FAILED'}",
        )

    def ctrl_c(self) -> None:
        run = self.run_dir("ctrl-c")
        proc = self.start("train", *LONG_RUN, "--run-dir", str(run))
        self.wait_for_labels(run, 6)
        before = self.answered(run)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        stopped = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
        self.record(
            "Ctrl-C mid-run",
            "prefrl train ...; Ctrl-C",
            stopped,
            labels=None,
            kept_every_label=before <= self.answered(run),
            outcome="stopped, says how to resume" if "prefrl resume" in err else "FAILED",
        )
        result = self.prefrl("resume", str(run), "--quiet", "--no-video")
        self.record(
            "... then resume",
            "prefrl resume RUN",
            result,
            labels=self.labels(run),
            kept_every_label=before <= self.answered(run),
            outcome="completed" if result.returncode == 0 else "FAILED",
        )

    def wait_for_labels(self, run: Path, n: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answered(run)) < n and time.monotonic() < deadline:
            time.sleep(0.2)

    def agent_first(self) -> None:
        run = self.run_dir("agent-first")
        result = self.prefrl(
            "train", "Pendulum-v1", "--steps", "512", "--labels", "30", *SMALL, "--run-dir", str(run)
        )
        used = self.labels(run)
        self.record(
            "the agent finishes before the labels are asked",
            "prefrl train Pendulum-v1 --steps 512 --labels 30",
            result,
            labels=used,
            kept_every_label=True,
            outcome="every label asked and trained on" if used == (30, 30) else "FAILED",
        )

    def no_labels_to_train_on(self) -> None:
        run = self.run_dir("all-skipped")
        result = self.prefrl(
            "train", *RUN, "--teacher", "skip:eps_skip=1,return_range=1e6..2e6", "--run-dir", str(run)
        )
        self.record(
            "every answer is 'skipped'",
            "prefrl train ... --teacher skip:eps_skip=1,return_range=1e6..2e6",
            result,
            labels=self.labels(run),
            kept_every_label=True,
            outcome="ends short, says why (exit 3)" if result.returncode == 3 else "FAILED",
        )

    def bad_values(self) -> None:
        for args, fault in (
            (["--labels", "0"], "--labels 0"),
            (["--labels", "-5"], "--labels -5"),
        ):
            # a short budget in case the value were taken
            result = self.prefrl("train", *RUN, *args, "--run-dir", str(self.run_dir("bad")))
            self.record(
                fault,
                f"prefrl train Pendulum-v1 {' '.join(args)}",
                result,
                labels=None,
                kept_every_label=True,
                outcome="refused, nothing written" if not self.run_dir("bad").exists() else "WROTE FILES",
            )
        file = self.root / "a-file"
        file.write_text("")
        result = self.prefrl("train", *RUN, "--run-dir", str(file))
        self.record(
            "--run-dir names a file",
            "prefrl train ... --run-dir FILE",
            result,
            labels=None,
            kept_every_label=True,
            outcome="refused in one line",
        )

    def damaged_files(self) -> None:
        run = self.run_dir("damaged")
        self.prefrl("train", *RUN, "--backend", "inprocess", "--run-dir", str(run))
        before = self.answered(run)
        conn = sqlite3.connect(run / "prefs.sqlite")
        clip_id, blob = conn.execute("SELECT clip_id, obs FROM clips LIMIT 1 OFFSET 3").fetchone()
        blob = bytearray(blob)
        blob[self.rng.randrange(len(blob))] ^= 0xFF
        with conn:
            conn.execute("UPDATE clips SET obs = ? WHERE clip_id = ?", (bytes(blob), clip_id))
        conn.close()
        result = self.prefrl("resume", str(run), "--labels", "24", "--quiet", "--no-video")
        self.record(
            "a byte flipped inside a stored clip",
            "prefrl resume RUN --labels 24",
            result,
            labels=None,
            kept_every_label=before <= self.answered(run),
            outcome="names the clip and prefrl repair" if "prefrl repair" in result.stderr else "FAILED",
        )
        repair = self.prefrl("repair", str(run))
        result = self.prefrl("resume", str(run), "--labels", "24", "--quiet", "--no-video")
        self.record(
            "... then prefrl repair, resume",
            "prefrl repair RUN; prefrl resume RUN --labels 24",
            result,
            labels=self.labels(run),
            kept_every_label=repair.returncode == 0,
            outcome="completed; set-aside labels asked again" if result.returncode == 0 else "FAILED",
        )
        config = run / "config.json"
        text = config.read_text()
        config.write_text(text[: len(text) // 2])
        result = self.prefrl("resume", str(run))
        self.record(
            "config.json cut in half",
            "prefrl resume RUN",
            result,
            labels=None,
            kept_every_label=True,
            outcome="names the file" if "config.json" in result.stderr else "FAILED",
        )
        config.write_text(text)

    def lost_files(self) -> None:
        run = self.run_dir("lost")
        self.prefrl("train", *RUN, "--backend", "inprocess", "--run-dir", str(run))
        before = self.answered(run)
        kept = self.root / "kept.sqlite"
        (run / "prefs.sqlite").rename(kept)
        result = self.prefrl("resume", str(run), "--labels", "24", "--quiet", "--no-video")
        self.record(
            "prefs.sqlite deleted, then prefrl resume",
            "prefrl resume RUN --labels 24",
            result,
            labels=None,
            kept_every_label=not (run / "prefs.sqlite").exists(),
            outcome="refused; names the answers and prefrl import"
            if "prefrl import" in result.stderr
            else "FAILED",
        )
        restore = self.prefrl("import", str(run), str(kept))
        result = self.prefrl("resume", str(run), "--labels", "24", "--quiet", "--no-video")
        self.record(
            "... then prefrl import of a copy, resume",
            "prefrl import RUN COPY.sqlite; prefrl resume RUN --labels 24",
            result,
            labels=self.labels(run),
            kept_every_label=restore.returncode == 0 and before <= self.answered(run),
            outcome="completed" if result.returncode == 0 else "FAILED",
        )
        (run / "checkpoints" / "agent.pt").unlink()
        result = self.prefrl("resume", str(run), "--steps", "16384", "--quiet", "--no-video")
        said = "no agent checkpoint" in result.stdout
        self.record(
            "checkpoints/agent.pt deleted, then prefrl resume --steps 16384",
            "prefrl resume RUN --steps 16384",
            result,
            labels=self.labels(run),
            kept_every_label=before <= self.answered(run),
            outcome="says the agent starts again from step 0; completed"
            if said and result.returncode == 0
            else "FAILED",
        )

    def crafted_files(self) -> None:
        run = self.run_dir("damaged")
        marker = self.root / "crafted-ran"
        checkpoint = run / "checkpoints" / "agent.pt"
        saved = checkpoint.read_bytes()
        import torch

        class Payload:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        torch.save({"policy": Payload()}, checkpoint)
        result = self.prefrl("play", str(run))
        self.record(
            "a crafted checkpoints/agent.pt (a pickle that runs a command)",
            "prefrl play RUN",
            result,
            labels=None,
            kept_every_label=True,
            outcome="refused; the command never ran" if not marker.exists() else "RAN CODE",
        )
        checkpoint.write_bytes(saved)
        task_file = self.root / "evil_task.py"
        task_file.write_text(f"open({str(marker)!r}, 'w').close()\n")
        data = json.loads((run / "config.json").read_text())
        # a run labelled by a person (as `prefrl label` needs) of a task in a file someone wrote
        (run / "config.json").write_text(json.dumps({**data, "task": f"{task_file}:x", "oracle": "human"}))
        # every command that opens a run's task
        for command in (
            ["play", "RUN"],
            ["resume", "RUN"],
            ["label", "RUN"],
            ["fit-reward", "RUN", "--run-dir", str(self.root / "fit")],
            ["baseline", "--reward", "RUN", "--run-dir", str(self.root / "retrain")],
        ):
            result = self.prefrl(*(str(run) if arg == "RUN" else arg for arg in command))
            refused = result.returncode == 2 and "--trust-task-file" in result.stderr
            self.record(
                "config.json names a task file someone else wrote",
                " ".join(["prefrl", *command[: command.index("RUN") + 1]]),
                result,
                labels=None,
                kept_every_label=True,
                outcome="RAN CODE"
                if marker.exists()
                else "refused without --trust-task-file"
                if refused
                else "FAILED",
            )
        (run / "config.json").write_text(json.dumps(data))

    # ------------------------------------------------------- faults fixed since
    def finished_run(self, name: str, *args: str) -> Path:
        """A small run trained to its end (the in-process backend unless ``args`` say)."""
        run = self.run_dir(name)
        self.prefrl("train", *RUN, "--backend", "inprocess", *args, "--run-dir", str(run))
        return run

    @staticmethod
    def line_with(result: subprocess.CompletedProcess[str], needle: str) -> str:
        """The first line prefrl printed (stdout or stderr) that holds ``needle``."""
        lines = (result.stdout or "").splitlines() + (result.stderr or "").splitlines()
        return next((line.strip() for line in lines if needle in line), "")

    def complete(self, run: Path) -> bool:
        used = self.labels(run)
        return bool(used) and used[0] == used[1]  # type: ignore[index]

    def torn_metrics(self) -> None:
        run = self.finished_run("torn-metrics")
        before = self.answered(run)
        metrics = run / "metrics.csv"
        data = metrics.read_bytes()
        start = data.rstrip(b"\n").rfind(b"\n") + 1  # the last row
        cut = self.rng.randrange(start + 1, len(data) - 1)  # some of it, never its newline
        metrics.write_bytes(data[:cut])
        result = self.prefrl("resume", str(run), "--steps", "16384", "--quiet", "--no-video")
        with metrics.open(newline="") as f:
            header, *rows = list(csv.reader(f))
        whole = all(len(row) == len(header) and row[0].isdigit() for row in rows)
        said = self.line_with(result, "cut short")
        self.record(
            "metrics.csv's last row cut at a random byte (a kill mid-append, a power loss)",
            "prefrl resume RUN --steps 16384",
            result,
            told=said,
            labels=self.labels(run),
            kept_every_label=before <= self.answered(run),
            outcome=f"cut at byte {cut - start} of its {len(data) - start}: "
            + (
                "row dropped, said in one line; completed; every row whole"
                if said and whole and result.returncode == 0 and self.complete(run)
                else "FAILED"
            ),
        )

    def damaged_checkpoints(self) -> None:
        run = self.finished_run("damaged-checkpoints", "--backend", "multiprocess")
        before = self.answered(run)
        steps = 8192
        for kind in ("agent", "reward_model", "reward_trainer"):
            path = run / "checkpoints" / f"{kind}.pt"
            data = path.read_bytes()
            name, at = self.random_tensor_byte(path)
            flipped = bytearray(data)
            flipped[at] ^= 1 << self.rng.randrange(8)
            cut = self.rng.randrange(1, len(data))
            for fault, damaged, words, where in (
                (
                    f"a bit flipped in checkpoints/{kind}.pt (a random bit of a random tensor)",
                    bytes(flipped),
                    "changed on disk",
                    f"{name}, byte {at}",
                ),
                (
                    f"checkpoints/{kind}.pt cut at a random byte",
                    data[:cut],
                    "delete it and resume",
                    f"cut at byte {cut} of {len(data)}",
                ),
            ):
                path.write_bytes(damaged)
                steps += 2048
                result = self.prefrl("resume", str(run), "--steps", str(steps), "--quiet", "--no-video")
                said = self.line_with(result, words)
                self.record(
                    fault,
                    f"prefrl resume RUN --steps {steps}",
                    result,
                    told=said or self.line_with(result, "prefrl"),
                    labels=None,
                    kept_every_label=before <= self.answered(run),
                    outcome=f"{where}: "
                    + ("names the file and the way out" if said and result.returncode != 0 else "FAILED"),
                )
            path.unlink()
            result = self.prefrl("resume", str(run), "--quiet", "--no-video")
            self.record(
                f"... then {kind}.pt deleted, prefrl resume",
                "rm RUN/checkpoints/FILE; prefrl resume RUN",
                result,
                labels=self.labels(run),
                kept_every_label=before <= self.answered(run),
                outcome="completed" if result.returncode == 0 and self.complete(run) else "FAILED",
            )

    def random_tensor_byte(self, path: Path) -> tuple[str, int]:
        """A random byte of a random tensor's data in the checkpoint ``path`` (a zip
        archive): the tensor's name in it, and the byte's offset in the file."""
        data = path.read_bytes()
        with zipfile.ZipFile(path) as archive:
            tensors = [info for info in archive.infolist() if "/data/" in info.filename and info.file_size]
        info = self.rng.choice(tensors)
        local = info.header_offset  # the local header's name and extra lengths, then the data
        start = local + 30 + int.from_bytes(data[local + 26 : local + 28], "little")
        start += int.from_bytes(data[local + 28 : local + 30], "little")
        return info.filename, start + self.rng.randrange(info.file_size)

    def live_run(self) -> None:
        run = self.run_dir("live")
        proc = self.start("train", *LONG_RUN, "--run-dir", str(run))
        self.wait_for_labels(run, self.rng.randint(2, 12))
        copy = self.root / "live-copy.sqlite"
        source = sqlite3.connect(f"file:{run / 'prefs.sqlite'}?mode=ro", uri=True)
        target = sqlite3.connect(copy)
        source.backup(target)
        source.close()
        target.close()
        for command in (["resume", "RUN"], ["repair", "RUN"], ["import", "RUN", "COPY.sqlite"]):
            before = self.answered(run)
            args = [str(run) if a == "RUN" else str(copy) if a == "COPY.sqlite" else a for a in command]
            result = self.prefrl(*args)
            refused = result.returncode == 2 and "stop it first" in result.stderr
            self.record(
                f"prefrl {command[0]} of a run while it runs",
                " ".join(["prefrl", *command]),
                result,
                labels=None,
                kept_every_label=before <= self.answered(run),
                outcome="refused in one line: stop it first" if refused and proc.poll() is None else "FAILED",
            )
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=60)
        before = self.answered(run)
        # after a reboot: status.json says running, its pid now another process's
        other = subprocess.Popen(["sleep", "300"])
        status = json.loads((run / "status.json").read_text())
        (run / "status.json").write_text(json.dumps({**status, "running": True, "pid": other.pid}))
        first = self.start("resume", str(run), "--quiet", "--no-video")
        delay = self.rng.uniform(0.0, 2.0)
        time.sleep(delay)
        second = self.start("resume", str(run), "--quiet", "--no-video")
        results = []
        for p in (first, second):
            _, err = p.communicate(timeout=300)
            results.append(subprocess.CompletedProcess(p.args, p.returncode, "", err))
        other.kill()
        other.wait()
        codes = sorted(r.returncode for r in results)
        refusal = next((r for r in results if r.returncode == 2), results[1])
        ran = next((r for r in results if r.returncode != 2), results[0])
        self.record(
            "status.json says running, its pid reused by another process (a reboot)",
            "prefrl resume RUN",
            ran,
            labels=self.labels(run),
            kept_every_label=before <= self.answered(run),
            outcome="the lock is free: marked stopped, resumed; completed"
            if ran.returncode == 0 and self.complete(run)
            else "FAILED",
        )
        self.record(
            "two prefrl resume of one run, the second a random moment after the first",
            "prefrl resume RUN & prefrl resume RUN",
            refusal,
            labels=self.labels(run),
            kept_every_label=before <= self.answered(run),
            outcome=f"second {delay:.2f} s after: "
            + (
                "one ran, the other refused in one line"
                if codes == [0, 2] and "is being run by another prefrl process" in refusal.stderr
                else f"FAILED (exits {codes})"
            ),
        )

    def resume_steps_killed(self) -> None:
        run = self.finished_run("grow-killed")
        before = self.answered(run)
        proc = self.start("resume", str(run), "--steps", "16384", "--quiet", "--no-video")
        wait = self.rng.uniform(0.5, 5.0)
        time.sleep(wait)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        budget = json.loads((run / "config.json").read_text())["steps"]
        state = f"killed {wait:.1f} s in (config.json at {budget} steps, summary.json " + (
            "kept)" if (run / "summary.json").exists() else "gone)"
        )
        result = self.prefrl("resume", str(run), "--quiet", "--no-video")
        summary = json.loads((run / "summary.json").read_text())
        honest = summary.get("complete") and summary.get("env_steps", 0) >= budget
        self.record(
            "prefrl resume --steps 16384 killed at a random moment, then prefrl resume",
            "prefrl resume RUN --steps 16384; kill -9; prefrl resume RUN",
            result,
            told=self.line_with(result, "prefrl:"),
            labels=self.labels(run),
            kept_every_label=before <= self.answered(run),
            outcome=f"{state}: "
            + (
                f"complete at {summary.get('env_steps')} steps, its budget"
                if honest and result.returncode == 0
                else "FAILED"
            ),
        )

    def finished_store_changed(self) -> None:
        run = self.finished_run("store-changed")
        conn = sqlite3.connect(run / "prefs.sqlite")
        pairs = conn.execute("SELECT left_clip, right_clip FROM queries ORDER BY query_id").fetchall()
        clip_id = self.rng.choice(self.rng.choice(pairs))
        (blob,) = conn.execute("SELECT obs FROM clips WHERE clip_id = ?", (clip_id,)).fetchone()
        blob = bytearray(blob)
        blob[self.rng.randrange(len(blob))] ^= 0xFF
        with conn:
            conn.execute("UPDATE clips SET obs = ? WHERE clip_id = ?", (bytes(blob), clip_id))
        conn.close()
        repair = self.prefrl("repair", str(run))
        conn = sqlite3.connect(f"file:{run / 'prefs.sqlite'}?mode=ro", uri=True)
        (aside,) = conn.execute("SELECT COUNT(*) FROM set_aside").fetchone()
        conn.close()
        result = self.prefrl("resume", str(run), "--quiet", "--no-video")
        said = self.line_with(result, "the store now holds")
        self.record(
            "a finished run's clip damaged, prefrl repair, then prefrl resume",
            "prefrl repair RUN; prefrl resume RUN",
            result,
            told=said,
            labels=self.labels(run),
            kept_every_label=repair.returncode == 0,
            outcome=f"{aside} labels set aside, "
            + (
                "asked again; completed"
                if said and result.returncode == 0 and self.complete(run)
                else "FAILED"
            ),
        )

    def reused_lost(self) -> None:
        source = self.finished_run("reuse-source")
        run = self.finished_run("reuse", "--labels-from", str(source))
        before = self.answered(run)
        (run / "reused.sqlite").unlink()
        result = self.prefrl("resume", str(run), "--steps", "16384", "--quiet", "--no-video")
        said = self.line_with(result, "gathered again")
        self.record(
            "reused.sqlite deleted (a --labels-from run), then prefrl resume --steps 16384",
            "prefrl resume RUN --steps 16384",
            result,
            told=said,
            labels=self.labels(run),
            kept_every_label=before <= self.answered(run) and (run / "reused.sqlite").exists(),
            outcome="gathered again from its source, said; completed"
            if said and result.returncode == 0 and self.complete(run)
            else "FAILED",
        )
        (run / "reused.sqlite").unlink()
        hidden = source.with_name("reuse-source-moved")
        source.rename(hidden)
        result = self.prefrl("resume", str(run), "--steps", "24576", "--quiet", "--no-video")
        hidden.rename(source)
        self.record(
            "... and its source gone too",
            "prefrl resume RUN --steps 24576",
            result,
            labels=None,
            kept_every_label=before <= self.answered(run),
            outcome="refused; names both"
            if result.returncode == 2 and "and so is that source" in result.stderr
            else "FAILED",
        )

    def video_interrupted(self) -> None:
        run = self.run_dir("store-changed")
        if not run.exists():
            run = self.finished_run("store-changed")
        out = self.root / "play.mp4"
        began = time.monotonic()
        self.prefrl("play", str(run), "--out", str(out))
        took = time.monotonic() - began
        old = out.read_bytes()
        proc = self.start("play", str(run), "--out", str(out), "--episodes", "3")
        wait = self.rng.uniform(0.5, took + 3)
        time.sleep(wait)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        import imageio.v2 as imageio

        try:
            with imageio.get_reader(out) as reader:
                frames = reader.count_frames()
        except Exception:  # any failure to read it is the fault
            frames = 0
        now = out.read_bytes()
        kept = "the old video as it was" if now == old else f"a new whole video ({frames} frames)"
        left = [p.name for p in out.parent.glob(".play.partial*")]
        self.record(
            "prefrl play killed (kill -9) at a random moment while it writes over a video",
            "prefrl play RUN --out V.mp4; kill -9",
            None,
            labels=None,
            kept_every_label=True,
            outcome=f"killed {wait:.1f} s in: "
            + (kept if frames > 0 else "FAILED: a broken video")
            + (f"; {left[0]} left beside it" if left else ""),
        )

    def damaged_export(self) -> None:
        source = self.run_dir("store-changed")
        if not source.exists():
            source = self.finished_run("store-changed")
        target = self.finished_run("import-target")
        export = self.root / "export"
        self.prefrl("export", str(source), str(export))
        npz = export / "clips.npz"
        saved = npz.read_bytes()
        import zipfile

        with zipfile.ZipFile(npz) as zf:
            member = self.rng.choice(zf.infolist())
        data = bytearray(saved)
        # the member's data: after its local header (30 bytes, then its name and extra field)
        name_len, extra_len = (
            int.from_bytes(data[member.header_offset + i : member.header_offset + i + 2], "little")
            for i in (26, 28)
        )
        at = member.header_offset + 30 + name_len + extra_len + self.rng.randrange(member.compress_size)
        data[at] ^= 1 << self.rng.randrange(8)
        npz.write_bytes(bytes(data))
        before = self.answered(target)
        result = self.prefrl("import", str(target), str(export))
        self.record(
            "a bit flipped in an export's clips.npz (a random bit of a random array)",
            "prefrl import RUN EXPORT",
            result,
            labels=None,
            kept_every_label=self.answered(target) == before,
            outcome=f"{member.filename}: "
            + (
                "refused in one line, nothing imported"
                if result.returncode == 2 and "clips.npz" in result.stderr and self.answered(target) == before
                else "FAILED"
            ),
        )
        npz.write_bytes(saved)
        answers = export / "answers.csv"
        text = answers.read_bytes()
        cut = self.rng.randrange(1, len(text) - 1)
        answers.write_bytes(text[:cut])
        result = self.prefrl("import", str(target), str(export))
        self.record(
            "an export's answers.csv cut at a random byte",
            "prefrl import RUN EXPORT",
            result,
            labels=None,
            kept_every_label=self.answered(target) == before,
            outcome=f"cut at byte {cut} of {len(text)}: "
            + (
                "refused in one line, nothing imported"
                if result.returncode == 2
                and "answers.csv" in result.stderr
                and self.answered(target) == before
                else "FAILED"
            ),
        )

    def disk_full(self) -> None:
        with tmpfs("400k") as mount:
            if mount is None:
                self.record(
                    "disk full",
                    "(needs root for a tmpfs)",
                    None,
                    labels=None,
                    kept_every_label=True,
                    outcome="SKIPPED: cannot mount a tmpfs here",
                )
                return
            run = mount / "run"
            result = self.prefrl("train", *RUN, "--run-dir", str(run))
            before = self.answered(run)
            moved = self.run_dir("disk-full-moved")
            subprocess.run(["cp", "-a", str(run), str(moved)], check=True)
        self.record(
            "the disk fills up mid-run (400 KB tmpfs)",
            "prefrl train ... --run-dir /small/run",
            result,
            labels=None,
            kept_every_label=True,
            outcome="one line, exit 1"
            if result.returncode == 1 and "Traceback" not in result.stderr
            else "FAILED",
        )
        result = self.prefrl("resume", str(moved), "--quiet", "--no-video")
        self.record(
            "... then the run copied to a larger disk and resumed",
            "cp -a; prefrl resume COPY",
            result,
            labels=self.labels(moved),
            kept_every_label=before <= self.answered(moved),
            outcome="completed" if result.returncode == 0 else "FAILED",
        )

    def read_only(self) -> None:
        run = self.run_dir("agent-first")
        with tmpfs("8m") as mount:
            if mount is None:
                self.record(
                    "read-only run directory",
                    "(needs root)",
                    None,
                    labels=None,
                    kept_every_label=True,
                    outcome="SKIPPED: cannot mount a tmpfs here",
                )
                return
            subprocess.run(["cp", "-a", str(run), str(mount / "run")], check=True)
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
            result = self.prefrl("resume", str(mount / "run"), "--labels", "40")
        self.record(
            "prefrl resume of a run on a read-only file system",
            "prefrl resume RUN --labels 40",
            result,
            labels=None,
            kept_every_label=True,
            outcome="refused in one line before starting"
            if result.returncode in (1, 2) and "Traceback" not in result.stderr
            else "FAILED",
        )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@contextlib.contextmanager
def tmpfs(size: str) -> Iterator[Path | None]:
    mount = Path(tempfile.mkdtemp(prefix="prefrl-tmpfs-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    try:
        yield mount if done.returncode == 0 else None
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        with contextlib.suppress(OSError):
            mount.rmdir()


def merged_rows(path: Path, new: list[dict]) -> list[dict]:
    """The rows of ``path`` (an earlier tour) with ``new`` in place of those of the same
    fault and command; a new row without an old one goes after the new row before it."""
    try:
        with path.open(newline="") as f:
            rows: list[dict] = list(csv.DictReader(f))
    except FileNotFoundError:
        return new
    at = {(row["fault"], row["command"]): i for i, row in enumerate(rows)}
    after = len(rows) - 1
    for row in new:
        key = (row["fault"], row["command"])
        if key in at:
            after = at[key]
            rows[after] = row
        else:
            after += 1
            rows.insert(after, row)
            at = {(r["fault"], r["command"]): i for i, r in enumerate(rows)}
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/reliability")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="run only these faults (method names); their rows replace those of the same fault and "
        "command in --out's faults.csv, whose other rows are kept",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.update(SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYTHONUNBUFFERED="1")
    order: list[tuple[str, Callable[[Tour], None]]] = [
        ("kill_agent", lambda t: t.kill_role("agent")),
        ("kill_labeler", lambda t: t.kill_role("labeler")),
        ("kill_reward_trainer", lambda t: t.kill_role("reward_trainer")),
        ("stop_agent", lambda t: t.kill_role("agent", signal.SIGSTOP)),
        ("stop_labeler", lambda t: t.kill_role("labeler", signal.SIGSTOP)),
        ("stop_reward_trainer", lambda t: t.kill_role("reward_trainer", signal.SIGSTOP)),
        ("kill_parent", Tour.kill_parent),
        ("ctrl_c", Tour.ctrl_c),
        ("agent_first", Tour.agent_first),
        ("no_labels_to_train_on", Tour.no_labels_to_train_on),
        ("bad_values", Tour.bad_values),
        ("damaged_files", Tour.damaged_files),
        ("lost_files", Tour.lost_files),
        ("crafted_files", Tour.crafted_files),
        ("torn_metrics", Tour.torn_metrics),
        ("damaged_checkpoints", Tour.damaged_checkpoints),
        ("live_run", Tour.live_run),
        ("resume_steps_killed", Tour.resume_steps_killed),
        ("finished_store_changed", Tour.finished_store_changed),
        ("reused_lost", Tour.reused_lost),
        ("video_interrupted", Tour.video_interrupted),
        ("damaged_export", Tour.damaged_export),
        ("disk_full", Tour.disk_full),
        ("read_only", Tour.read_only),
    ]
    with tempfile.TemporaryDirectory(prefix="prefrl-faults-") as root:
        tour = Tour(Path(root), args.seed)
        for name, fault in order:
            if args.only is None or name in args.only:
                fault(tour)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            **row,
            "told": re.sub(
                r"/tmp/(?:[^/\s]+/)*prefrl-tmpfs-\w+", "/small", str(row["told"]).replace(root, "/tmp/RUNS")
            ),
            "labels": "" if not row.get("labels") else "{}/{}".format(*row["labels"]),
        }
        for row in tour.rows
    ]
    if args.only is not None:
        rows = merged_rows(out / "faults.csv", rows)
    with (out / "faults.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print("\n| fault | command | exit | labels | kept every label | outcome |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['fault']} | {row['command']} | {row['exit_code']} | {row['labels']} "
            f"| {row['kept_every_label']} | {row['outcome']} |"
        )
    print(f"\nwrote {out / 'faults.csv'}")
    return (
        0 if not any("FAIL" in str(r["outcome"]) or "RAN CODE" in str(r["outcome"]) for r in tour.rows) else 1
    )


if __name__ == "__main__":
    sys.exit(main())
