"""The pipes between the roles' processes: what each end sees when the other dies."""

import multiprocessing as mp
import os
import signal
import struct
import time

import numpy as np

from prefrl.runtime.channels import ClipBatch, RunMemory
from prefrl.runtime.multiprocess import Inbox, Outbox

BIG = b"x" * 1_000_000  # far more than a pipe holds: its sender blocks until it is read


def read_all(conn, timeout=5.0):
    out = []
    while conn.poll(timeout):
        out.append(conn.recv())
        timeout = 0.2
    return out


def test_an_outbox_keeps_only_the_newest_weights_and_bounds_clip_batches():
    reader, writer = mp.Pipe(duplex=False)
    outbox = Outbox(writer, max_clip_batches=2)
    assert outbox.put("status", BIG)  # the sending thread is stuck on this until we read
    for version in (1, 2, 3):
        assert outbox.put("weights", {"version": version})
    assert [outbox.put("clips", n) for n in range(3)] == [True, True, False]
    assert outbox.put("status", "last")
    received = read_all(reader)
    outbox.close()
    assert [kind for kind, _ in received] == ["status", "weights", "clips", "clips", "status"]
    assert received[1][1] == {"version": 3} and [p for k, p in received if k == "clips"] == [0, 1]
    assert received[-1][1] == "last"


def test_an_outbox_whose_reader_is_gone_stops_sending_and_says_so():
    reader, writer = mp.Pipe(duplex=False)
    outbox = Outbox(writer)
    reader.close()
    outbox.put("status", BIG)
    deadline = time.monotonic() + 5
    while not outbox.broken and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outbox.broken and outbox.put("status", "more") is False


def test_an_inbox_sorts_messages_and_reads_end_of_file_after_a_half_written_message():
    reader, writer = mp.Pipe(duplex=False)
    inbox = Inbox(reader)
    batch = ClipBatch([], agent_step=7)
    writer.send(("clips", batch))
    writer.send(("weights", {"version": 1}))
    writer.send(("weights", {"version": 2}))
    writer.send(("final", ClipBatch([], agent_step=9, final=True)))
    # a writer killed mid-message: a length header for 1000 bytes, then only 10 of them
    os.write(writer.fileno(), struct.pack("!i", 1000) + b"0123456789")
    writer.close()
    inbox.pump(timeout=1.0)
    assert inbox.closed
    assert [(b.agent_step, b.final) for b in inbox.clips] == [(7, False), (9, True)]
    assert inbox.weights == {"version": 2}


def _send_forever(conn):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    payload = np.arange(500_000, dtype=np.float64)  # 4 MB: many pipe-fulls per message
    while True:
        conn.send(("weights", {"version": 1, "net": payload}))


def test_a_reader_never_hangs_on_a_writer_killed_at_a_random_moment():
    rng = np.random.default_rng(0)
    ctx = mp.get_context("spawn")
    for _ in range(3):
        reader, writer = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_send_forever, args=(writer,), daemon=True)
        process.start()
        writer.close()  # the child holds the only writing end: its death is our end-of-file
        inbox = Inbox(reader)
        inbox.pump(timeout=30)  # the first whole message
        assert inbox.weights is not None and inbox.weights["net"].shape == (500_000,)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(process.pid, signal.SIGKILL)  # very likely mid-message
        deadline = time.monotonic() + 10
        while not inbox.closed and time.monotonic() < deadline:
            inbox.pump(timeout=0.1)
        assert inbox.closed
        process.join(5)


def test_run_memory_tells_a_new_role_the_newest_weights_and_enough_recent_clips():
    memory = RunMemory(pool_size=5)
    assert memory.for_new("agent") == [] and memory.for_new("labeler") == []
    batches = [ClipBatch([f"c{i}{j}" for j in range(2)], agent_step=i) for i in range(4)]  # 2 clips each
    for batch in batches:
        memory.keep_clips(batch)
    # 5 clips are wanted: the last 3 batches hold 6, the last 2 only 4
    assert list(memory.recent_clips) == batches[1:]
    memory.weights = {"version": 7}
    memory.final = ClipBatch([], agent_step=9, final=True)
    assert memory.for_new("agent") == [("weights", {"version": 7})]
    assert memory.for_new("reward_trainer") == []
    assert memory.for_new("labeler") == [
        ("weights", {"version": 7}),
        *[("clips", b) for b in batches[1:]],
        ("final", memory.final),
    ]
