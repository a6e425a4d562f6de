"""Runs that survive faults and refuse garbage: signals, damaged checkpoints, run folders, kill -9.

Every test here reproduces a failure of an earlier refrl (see docs/reliability.md): SIGTERM saved
nothing, a damaged newest checkpoint blocked ``--resume`` with a BadZipFile traceback, two runs
into one folder mixed their files, and ``metrics.csv`` repeated the lost segment after a resume.
The runs are tiny (CartPole-v1, one env, 64-step rollouts, an 8-unit network) so that the whole
file takes seconds.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import refrl
from refrl.cli import main
from refrl.serialization import load_checkpoint, save_checkpoint

TINY = ["--set", "n_envs=1", "--set", "n_steps=64", "--set", "batch_size=64", "--set", "n_epochs=1",
        "--set", "net_arch=[8]", "--no-progress", "--eval-episodes", "0"]
ROLLOUT = 64  # environment steps per update with TINY


def _train_argv(out, *extra, steps=1000, every=64):
    return ["train", "ppo", "CartPole-v1", "--steps", str(steps), "--seed", "3", "--out", str(out),
            "--checkpoint-every", str(every), *TINY, *extra]


def _checkpoints(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob("step_*.npz"))


def _temporaries(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if p.is_file() and p.name.endswith(".tmp")]


def _logged_steps(out: Path) -> list[int]:
    steps = []
    with (out / "metrics.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                steps.append(int(row["time/total_timesteps"]))
            except (TypeError, ValueError, KeyError):
                pass  # a row cut short by kill -9
    return steps


def _wait_for(predicate, timeout=60.0, what="condition"):
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def _popen_train(argv, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "refrl", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kw)


# ---------------------------------------------------------------------------- signals
def test_sigterm_mid_run_saves_a_checkpoint_exits_143_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    proc = _popen_train(_train_argv(out, steps=10_000_000, every=640))
    try:
        _wait_for(lambda: _checkpoints(out), what="the first checkpoint")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM == 143, err
    assert "SIGTERM" in err and "--resume" in err
    newest = _checkpoints(out)[-1]
    arrays, meta = load_checkpoint(newest)  # verifies the checksum
    model = refrl.algos.load(out / "model.npz")
    # the checkpoint is the state at the stop, not the previous periodic one: 0 steps lost
    assert meta["num_timesteps"] == model.num_timesteps == max(_logged_steps(out))
    assert not _temporaries(out)
    assert main(["train", "--resume", str(out), "--steps", str(meta["num_timesteps"] + 2 * ROLLOUT),
                 "--eval-episodes", "0", "--no-progress"]) == 0
    assert f"from {newest} ({meta['num_timesteps']} steps)" in capsys.readouterr().out
    assert refrl.algos.load(out / "model.npz").num_timesteps >= meta["num_timesteps"] + 2 * ROLLOUT
    steps = _logged_steps(out)
    assert steps == sorted(set(steps))


def test_second_signal_aborts_at_once_without_damaging_files(tmp_path):
    out = tmp_path / "run"
    # 400 epochs per update: the update in progress at the first signal is still running at the second
    proc = _popen_train(_train_argv(out, "--set", "n_epochs=400", steps=10_000_000, every=64))
    try:
        _wait_for(lambda: len(_checkpoints(out)) >= 2, what="two checkpoints")
        proc.send_signal(signal.SIGTERM)
        first = proc.stderr.readline() + proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    err = first + err
    assert proc.returncode == 143, err
    assert "stopping after this update" in err and "again: aborting" in err and "Traceback" not in err
    assert not (out / "model.npz").exists()  # aborted before the final save
    for p in _checkpoints(out):
        load_checkpoint(p)
    assert not _temporaries(out)  # an aborted write removes its temporary


# ---------------------------------------------------------------------------- damaged checkpoints
def _run_with_checkpoints(tmp_path, name="run"):
    out = tmp_path / name
    assert main(_train_argv(out, "--keep", "3", steps=5 * ROLLOUT, every=ROLLOUT)) == 0
    ckpts = _checkpoints(out)
    assert len(ckpts) == 3
    return out, ckpts


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _flip_bit(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 0x10  # inside an array member
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip_bit], ids=["truncated", "bit-flipped"])
def test_resume_skips_a_damaged_newest_checkpoint(tmp_path, capsys, damage):
    out, ckpts = _run_with_checkpoints(tmp_path)
    damage(ckpts[-1])
    capsys.readouterr()
    good_steps = load_checkpoint(ckpts[-2])[1]["num_timesteps"]
    assert main(["train", "--resume", str(out), "--steps", str(8 * ROLLOUT), "--eval-episodes", "0",
                 "--no-progress"]) == 0
    cap = capsys.readouterr()
    assert re.search(rf"skipp\w* {re.escape(str(ckpts[-1]))}.*damaged", cap.err), cap.err
    assert f"from {ckpts[-2]} ({good_steps} steps)" in cap.out
    steps = _logged_steps(out)
    assert steps == sorted(set(steps))  # the rows after the checkpoint were dropped, not repeated


def _raw_doc(p: Path) -> dict:
    with zipfile.ZipFile(p) as zf, zf.open("__meta__.npy") as fh:
        return json.loads(str(np.lib.format.read_array(fh)))


def _rewrite(p: Path, dst: Path, *, drop=(), meta_update=None, arrays_update=None, version1=False) -> Path:
    """Re-save a checkpoint's content with changes, the way the earlier refrl wrote files (np.savez)."""
    arrays, _ = load_checkpoint(p)
    meta = _raw_doc(p)  # with its stored checksum and array list
    for k in drop:
        arrays.pop(k)
    arrays.update(arrays_update or {})
    meta.update(meta_update or {})
    if version1:
        meta = {k: v for k, v in meta.items() if k not in ("checksum", "arrays")}
        meta["version"] = 1
    with dst.open("wb") as fh:
        np.savez(fh, __meta__=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    return dst


def _npy_member(zf: zipfile.ZipFile, name: str, header: dict, payload: bytes = b"") -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    zf.writestr(name, buf.getvalue() + payload)


def _damaged_cases(tmp_path: Path, good: Path) -> dict[str, Path]:
    data = good.read_bytes()
    cases: dict[str, Path] = {}

    def put(name, content: bytes) -> None:
        cases[name] = tmp_path / f"{name}.npz"
        cases[name].write_bytes(content)

    put("empty", b"")
    put("one_byte", data[:1])
    for n in (30, 1000, len(data) // 2, len(data) - 22, len(data) - 1):
        put(f"truncated_{n}", data[:n])
    put("text", b"this is not a checkpoint\n" * 10)
    put("random", np.random.default_rng(0).bytes(5000))
    np.save(tmp_path / "plain.npy", np.arange(3.0))
    put("plain_npy", (tmp_path / "plain.npy").read_bytes())
    for label, meta in (("meta_not_json", "}}{{ not json"), ("meta_list", "[1, 2, 3]"), ("meta_float", "3.0")):
        with zipfile.ZipFile(tmp_path / f"{label}.npz", "w") as zf:
            buf2 = io.BytesIO()
            np.lib.format.write_array(buf2, np.array(meta))
            zf.writestr("__meta__.npy", buf2.getvalue())
        cases[label] = tmp_path / f"{label}.npz"
    # declared shape of 10**13 floats in a 7 KB file: must be refused before allocation
    arrays, meta = load_checkpoint(good)
    with zipfile.ZipFile(tmp_path / "huge_shape.npz", "w") as zf:
        buf3 = io.BytesIO()
        np.lib.format.write_array(buf3, np.array(json.dumps({k: v for k, v in meta.items()
                                                              if k not in ("checksum", "arrays")} | {"version": 1})))
        zf.writestr("__meta__.npy", buf3.getvalue())
        _npy_member(zf, "policy/params.npy", {"descr": "<f4", "fortran_order": False, "shape": (10**13,)},
                    b"\0" * 7000)
    cases["huge_shape"] = tmp_path / "huge_shape.npz"
    # a zip bomb: 300 KB on disk, 256 MB when inflated, in an extra member
    bomb = tmp_path / "bomb.npz"
    bomb.write_bytes(data)
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("junk.npy", "w") as fh:
        hdr = io.BytesIO()
        np.lib.format.write_array_header_1_0(hdr, {"descr": "<f8", "fortran_order": False, "shape": (2**25,)})
        fh.write(hdr.getvalue())
        zeros = bytes(2**20)
        for _ in range(256):
            fh.write(zeros)
    cases["zip_bomb"] = bomb
    # content changed, zip CRCs recomputed: only the checksum can tell
    cases["params_changed"] = _rewrite(good, tmp_path / "params_changed.npz",
                                       arrays_update={"policy/params": arrays["policy/params"] + 1})
    cases["no_optimiser_state"] = _rewrite(good, tmp_path / "no_optim.npz", drop=("optim/m", "optim/v"), version1=True)
    cases["no_optim_v"] = _rewrite(good, tmp_path / "no_optim_v.npz", drop=("optim/v",), version1=True)
    cases["negative_num_timesteps"] = _rewrite(good, tmp_path / "negative.npz", meta_update={"num_timesteps": -1000},
                                               version1=True)
    cases["num_timesteps_text"] = _rewrite(good, tmp_path / "many.npz", meta_update={"num_timesteps": "many"},
                                           version1=True)
    for key in ("algo", "config", "rng_state"):
        cases[f"no_{key}"] = _rewrite(good, tmp_path / f"no_{key}.npz", meta_update={}, version1=True)
        a, m = load_checkpoint(cases[f"no_{key}"])
        del m[key]
        with cases[f"no_{key}"].open("wb") as fh:
            np.savez(fh, __meta__=np.array(json.dumps(m)), **a)
    cases["extra_is_list"] = _rewrite(good, tmp_path / "extra_list.npz", meta_update={"extra": [1]}, version1=True)
    cases["rng_garbage"] = _rewrite(good, tmp_path / "rng.npz", meta_update={"rng_state": {"x": 1}}, version1=True)
    return cases


def test_damaged_or_foreign_checkpoints_give_one_line_checkpoint_error(tmp_path):
    out, ckpts = _run_with_checkpoints(tmp_path)
    cases = _damaged_cases(tmp_path, ckpts[-1])
    assert issubclass(refrl.CheckpointError, ValueError)
    wrong = {}
    for name, path in cases.items():
        try:
            refrl.algos.load(path)
        except refrl.CheckpointError as exc:
            msg = str(exc)
            if "\n" in msg or path.name not in msg or len(msg) > 400:
                wrong[name] = f"unclear message: {msg!r}"
        except BaseException as exc:  # noqa: BLE001 - the point is to see every other exception
            wrong[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
        else:
            wrong[name] = "loaded"
    assert not wrong, wrong


def test_bit_flips_in_the_zip_directory_never_load_different_content(tmp_path):
    """A flipped bit in the central directory once made zipfile list only policy/params, and the
    load silently dropped the Adam state.  Now every flip either loads the same content or is refused."""
    out, ckpts = _run_with_checkpoints(tmp_path)
    data = ckpts[-1].read_bytes()
    ref_arrays, ref_meta = load_checkpoint(ckpts[-1])
    p = tmp_path / "flipped.npz"
    outcomes = {"refused": 0, "identical": 0}
    for offset in range(len(data) - 1200, len(data)):
        buf = bytearray(data)
        buf[offset] ^= 1 << (offset % 8)
        p.write_bytes(bytes(buf))
        try:
            arrays, meta = load_checkpoint(p)
            refrl.algos.load(p)
        except refrl.CheckpointError as exc:
            assert "\n" not in str(exc) and p.name in str(exc)
            outcomes["refused"] += 1
            continue
        assert meta == ref_meta and arrays.keys() == ref_arrays.keys(), offset
        assert all(arrays[k].tobytes() == ref_arrays[k].tobytes() for k in arrays), offset
        outcomes["identical"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 1200


def test_checkpoint_records_format_version_and_checksum(tmp_path):
    p = save_checkpoint(tmp_path / "c.npz", {"a": np.arange(3.0), "b": np.ones((2, 2), np.float32)}, {"x": 1})
    doc = _raw_doc(p)
    assert doc["version"] == 2 and re.fullmatch(r"sha256:[0-9a-f]{64}", doc["checksum"])
    assert doc["arrays"] == {"a": {"dtype": "<f8", "shape": [3]}, "b": {"dtype": "<f4", "shape": [2, 2]}}
    arrays, meta = load_checkpoint(p)
    assert meta["x"] == 1 and arrays["b"].dtype == np.float32 and arrays["b"].shape == (2, 2)
    arrays["a"][0] = 5.0  # loaded arrays are ordinary writable arrays


def test_checkpoint_of_the_earlier_format_still_loads(tmp_path):
    out, ckpts = _run_with_checkpoints(tmp_path)
    old = _rewrite(ckpts[-1], tmp_path / "v1.npz", version1=True)
    a, b = refrl.algos.load(ckpts[-1]), refrl.algos.load(old)
    assert a.policy.params.tobytes() == b.policy.params.tobytes()
    assert a.optimizer.state_dict()["v"].tobytes() == b.optimizer.state_dict()["v"].tobytes()
    assert a.num_timesteps == b.num_timesteps


def test_written_files_get_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert main(_train_argv(out, steps=2 * ROLLOUT, every=ROLLOUT)) == 0
    finally:
        os.umask(old)
    for p in [out / "config.json", out / "model.npz", out / "metrics.csv", *_checkpoints(out)]:
        assert p.stat().st_mode & 0o777 == 0o644, p


def test_leftover_temporaries_are_removed_at_the_next_start(tmp_path, capsys):
    out, ckpts = _run_with_checkpoints(tmp_path)
    leftovers = [out / "checkpoints" / ".step_000000012424.npz.was3kh43.tmp", out / ".config.json.x1y2z3.tmp"]
    for p in leftovers:
        p.write_bytes(b"partial")
    assert main(["train", "--resume", str(out), "--steps", str(7 * ROLLOUT), "--eval-episodes", "0",
                 "--no-progress"]) == 0
    assert not any(p.exists() for p in leftovers)


# ---------------------------------------------------------------------------- run folders
def test_a_second_writer_into_one_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    proc = _popen_train(_train_argv(out, steps=10_000_000, every=640))
    try:
        _wait_for(lambda: _checkpoints(out), what="the first run's checkpoint")
        before, config = _checkpoints(out), (out / "config.json").read_bytes()
        with pytest.raises(SystemExit) as exc:
            main(_train_argv(out, "--overwrite", steps=640))
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"in use by process {proc.pid}" in err and os.uname().nodename in err
        with pytest.raises(SystemExit):
            main(["train", "--resume", str(out), "--no-progress"])
        assert f"in use by process {proc.pid}" in capsys.readouterr().err
        assert proc.poll() is None  # the first run goes on, its files untouched
        assert (out / "config.json").read_bytes() == config
        # the first run's own rotation may have pruned its older checkpoints meanwhile (it keeps the
        # last 3; a 4th exists for a moment between a write and the prune), nothing else removed any
        now = _checkpoints(out)
        assert now and all(p in now or p < now[0] for p in before), (before, now)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143
    steps = _logged_steps(out)
    assert steps == sorted(set(steps))  # one run's rows only


def test_a_non_empty_out_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train_argv(out, steps=2 * ROLLOUT, every=ROLLOUT)) == 0
    old_model = (out / "model.npz").read_bytes()
    with pytest.raises(SystemExit):
        main(_train_argv(out, steps=2 * ROLLOUT))
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "model.npz").read_bytes() == old_model  # nothing deleted
    (out / "notes.txt").write_text("mine")
    assert main(_train_argv(out, "--overwrite", "--set", "learning_rate=1e-3", steps=3 * ROLLOUT)) == 0
    assert (out / "notes.txt").read_text() == "mine"  # only the run's own files are replaced
    assert refrl.algos.load(out / "model.npz").config.learning_rate == 1e-3


def test_metrics_are_truncated_back_to_the_checkpoint_on_resume(tmp_path, capsys):
    out, ckpts = _run_with_checkpoints(tmp_path)
    for p in ckpts[1:]:
        p.unlink()  # as after kill -9: the rows of two updates have no checkpoint
    kept = load_checkpoint(ckpts[0])[1]["num_timesteps"]
    assert max(_logged_steps(out)) > kept
    assert main(["train", "--resume", str(out), "--steps", str(8 * ROLLOUT), "--eval-episodes", "0",
                 "--no-progress"]) == 0
    steps = _logged_steps(out)
    assert steps == sorted(set(steps)) and max(steps) >= 8 * ROLLOUT
    assert kept in steps


# ---------------------------------------------------------------------------- fault injection
def _cli_in_child(argv):
    """Target of the killed processes: ``refrl`` with its output discarded."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    os._exit(code)


def test_kill9_at_random_moments_then_resume(tmp_path, capsys):
    """20 short runs with a checkpoint after every update, each killed with SIGKILL at a seeded
    random moment after its first checkpoint, then resumed: every resume succeeds, no visible
    checkpoint is damaged, leftovers are cleaned, and at most one update of steps is lost."""
    ctx = multiprocessing.get_context("forkserver")  # children start without re-importing refrl
    ctx.set_forkserver_preload(["refrl.cli", "refrl.algos.ppo", "gymnasium.envs.classic_control"])
    rng = np.random.default_rng(20261202)
    report = {"resumed": 0, "inside_write": 0, "lost": []}
    for trial in range(20):
        out = tmp_path / f"k{trial}"
        child = ctx.Process(target=_cli_in_child, args=(_train_argv(out, steps=10_000_000, every=1),))
        child.start()
        try:
            _wait_for(lambda: _checkpoints(out), what=f"trial {trial}'s first checkpoint")
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            child.kill()
            child.join()
        assert child.exitcode == -signal.SIGKILL
        for p in _checkpoints(out):
            load_checkpoint(p)  # raises if a visible checkpoint is damaged
        report["inside_write"] += bool(_temporaries(out))
        last_logged = max(_logged_steps(out))
        capsys.readouterr()
        assert main(["train", "--resume", str(out), "--steps", str(last_logged + ROLLOUT),
                     "--eval-episodes", "0", "--no-progress"]) == 0
        m = re.search(r"from \S+ \((\d+) steps\)", capsys.readouterr().out)
        report["resumed"] += 1
        report["lost"].append(last_logged - int(m.group(1)))
        assert not _temporaries(out)
        steps = _logged_steps(out)
        assert steps == sorted(set(steps))
    print(f"kill -9: {report['resumed']}/20 resumed, {report['inside_write']} kills inside a write, "
          f"steps lost max {max(report['lost'])} mean {np.mean(report['lost']):.1f} (one update = {ROLLOUT})",
          file=sys.__stderr__)
    assert report["resumed"] == 20
    assert max(report["lost"]) <= ROLLOUT
