"""Multi-worker training from ``$TF_CONFIG``: the variable's checks, the chief-only writes,
two worker processes on localhost against one process, and a worker that dies."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common import cluster
from common.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def tf_config(ports, index) -> str:
    return json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


@pytest.mark.parametrize("text, message", [
    ("{cluster: 1", "$TF_CONFIG is not valid JSON (Expecting property name enclosed in double quotes at character 1)"),
    ('{"task": {"type": "worker", "index": 0}}', "$TF_CONFIG lacks field 'cluster'"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', "$TF_CONFIG lacks field 'task'"),
    ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "$TF_CONFIG lacks field 'cluster.worker'"),
    ('{"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker", "index": 0}}',
     "$TF_CONFIG: field 'cluster.worker' must be a non-empty list of 'host:port' strings"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker"}}', "$TF_CONFIG lacks field 'task.index'"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "$TF_CONFIG: field 'task.index' is 2 but 'cluster.worker' lists 2 worker(s) (valid: 0..1)"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": "1"}}',
     "$TF_CONFIG: field 'task.index' must be an integer, got \"1\""),
    ('{"cluster": {"worker": ["a:1"], "ps": ["c:3"]}, "task": {"type": "worker", "index": 0}}',
     "$TF_CONFIG: field 'cluster.ps' is not supported"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "chief", "index": 0}}',
     "$TF_CONFIG: field 'task.type' must be \"worker\", got \"chief\""),
])
def test_malformed_tf_config_is_one_line_naming_the_variable_and_field(text, message):
    with pytest.raises(UserError) as err:
        cluster.cluster_from_env({"TF_CONFIG": text})
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_cluster_of_tf_config_and_the_worker_a_peer_error_names():
    assert cluster.cluster_from_env({}) is None and cluster.cluster_from_env({"TF_CONFIG": " "}) is None
    # one worker: a process alone, today's single-process path
    assert cluster.cluster_from_env({"TF_CONFIG": tf_config([5000], 0)}) is None
    two = cluster.cluster_from_env({"TF_CONFIG": tf_config([5000, 5001], 1)})
    assert two == cluster.Cluster(workers=("localhost:5000", "localhost:5001"), index=1) and not two.chief
    assert two.describe() == "worker 1 (localhost:5001)"
    chief = cluster.Cluster(workers=("localhost:5000", "localhost:5001", "h2:7"), index=0)
    # TensorFlow names the peer by its task or by the address it failed to reach
    assert cluster.lost_worker("from remote target /job:worker/replica:0/task:2 while", chief) == "worker 2 (h2:7)"
    assert cluster.lost_worker("ipv4:127.0.0.1:5001: Failed to connect", chief) == "worker 1 (localhost:5001)"
    assert cluster.lost_worker("something else", chief) is None


def start(results, tf_conf=None, die_at=None):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "VF_RESULTS_ROOT")}
    env.update({"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "CI": "true"})
    if tf_conf:
        env["TF_CONFIG"] = tf_conf
    if die_at:
        env["MW_DIE_AT_STEP"] = str(die_at)
    return subprocess.Popen([sys.executable, "-m", "tests.multi_worker_job", str(results)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_two_workers_on_localhost_match_one_process_and_only_the_chief_writes(tmp_path, monkeypatch):
    """Base training (6 epochs of batches of 9 from 48 images: uneven shares, a partial
    last batch) and a retraining (propagation, pasa for 4 iterations) in one process and on
    two workers. Both compute the same global-batch gradients; only the order of float32
    sums differs (each worker's share is summed by the all-reduce), about 1e-7 relative per
    step: the losses agree to 1e-4, and no prediction on the 24 test images has a margin
    that small, so test accuracy must agree within 0.01 (here: exactly)."""
    from retraining import base_training
    from tests import multi_worker_job

    ports = cluster.free_local_ports(2)
    workers = [start(tmp_path / "two" / "results", tf_config(ports, i)) for i in range(2)]
    monkeypatch.setattr(base_training, "load_dataset", base_training.load_dataset)  # the job patches it
    one = multi_worker_job.main(tmp_path / "one" / "results")  # this process is alone: the single-process path
    (rc_c, out_c, err_c), (rc_w, out_w, err_w) = [finish(p) for p in workers]
    assert rc_c == 0, err_c[-3000:]
    assert rc_w == 0, err_w[-3000:]
    chief, worker = (json.loads(o.strip().splitlines()[-1]) for o in (out_c, out_w))
    assert one["workers"] == 1 and chief["workers"] == 2 and worker["workers"] == 2
    # the chief's run exists where a single process puts it, with the same files
    root = tmp_path / "two" / "results"
    assert chief["wrote"] == [str(root / "train" / "mw" / "result.json"), str(root / "backprops" / "mw" / "summary.json")]
    assert all(Path(p).is_file() for p in chief["wrote"])
    assert files_under(root) == files_under(tmp_path / "one" / "results")
    addresses = [f"localhost:{p}" for p in ports]
    for part in ("train", "backprops"):  # the run says it ran on the cluster; one process's config is unchanged
        assert json.loads((root / part / "mw" / "config.json").read_text())["workers"] == addresses
        assert "workers" not in json.loads((tmp_path / "one" / "results" / part / "mw" / "config.json").read_text())
    # the other worker wrote into its private folder only, removed when it exited
    assert all(p.startswith(worker["private"] + "/") for p in worker["wrote"])
    assert not Path(worker["private"]).exists()
    assert "worker 1 (localhost:%d) of 2: trains in step with the others" % ports[1] in err_w
    for run in (chief, worker):
        assert run["base_loss"] == pytest.approx(one["base_loss"], rel=1e-4)
        assert abs(run["base_test"] - one["base_test"]) <= 0.01
        # propagation, computed in blocks across the workers: the same masks as one process
        assert run["propagated"] == one["propagated"] and run["propagated"]["n_images"] > 0
        assert run["propagated_masks"] == one["propagated_masks"] and run["val_swap"] == one["val_swap"]
        assert run["methods"].keys() == one["methods"].keys()
        assert all(abs(run["methods"][k] - v) <= 0.01 for k, v in one["methods"].items())
    assert one["base_loss"][-1] < one["base_loss"][0] and one["methods"]["pasa"] > one["base_test"]  # it learned


def test_a_worker_that_dies_fails_the_run_naming_it_and_keeps_the_last_good_run(tmp_path):
    ports = cluster.free_local_ports(2)
    root = tmp_path / "results"
    good = root / "train" / "mw"
    good.mkdir(parents=True)
    (good / "result.json").write_text('{"kept": true}', encoding="utf-8")
    workers = [start(root, tf_config(ports, i), die_at=3 if i == 1 else None) for i in range(2)]
    (rc_c, _, err_c), (rc_w, _, _) = [finish(p) for p in workers]
    assert rc_w == 1  # died at its third step
    assert rc_c == 2, err_c[-3000:]
    line = [x for x in err_c.splitlines() if x.startswith("error: ")]
    assert len(line) == 1, err_c[-3000:]
    assert line[0].startswith(f"error: multi-worker training stopped: worker 1 (localhost:{ports[1]}) died or "
                              "became unreachable")
    assert (good / "result.json").read_text(encoding="utf-8") == '{"kept": true}'  # the last good run is intact
    assert (root / "train" / "mw.failed" / "config.json").is_file()  # the attempt, kept aside


@pytest.fixture
def cluster_env(monkeypatch):
    """Sets ``$TF_CONFIG`` for this process (read afresh), restored afterwards."""
    from classification_models import distributed

    def set_to(text):
        monkeypatch.setenv("TF_CONFIG", text)
        cluster.current.cache_clear()
        distributed.cluster_strategy.cache_clear()

    yield set_to
    monkeypatch.delenv("TF_CONFIG", raising=False)
    cluster.current.cache_clear()
    distributed.cluster_strategy.cache_clear()


def test_a_malformed_tf_config_stops_base_training_before_anything_is_written(tmp_path, cluster_env):
    from retraining import base_training
    from retraining.train_config import load_train_config
    from tests.fixtures_models import tiny_config, write_config

    cluster_env('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker"}}')
    cfg = load_train_config(write_config(tmp_path / "c.json", tiny_config(tmp_path)))
    with pytest.raises(UserError, match=r"^\$TF_CONFIG lacks field 'task.index'$"):
        base_training.run(cfg, source="c.json")
    assert list(tmp_path.iterdir()) == [tmp_path / "c.json"]


class _TwoWorkers:
    """Stands in for the strategy of a two-worker cluster (the checks before any work)."""

    num_replicas_in_sync = 2


def test_what_a_multi_worker_run_refuses(monkeypatch):
    from classification_models import training
    from retraining import runner
    from retraining.data import masked_set_from_items
    from tests.fixtures_retrain import make_classifier, make_dataset, make_retrain_config

    monkeypatch.setattr(training, "cluster_strategy", lambda: _TwoWorkers())
    with pytest.raises(UserError, match=r"^train.distribute is 'mirrored' but \$TF_CONFIG names 2 workers: use "
                                        r"'none' or 'multi_worker'$"):
        training.make_strategy("mirrored")
    assert isinstance(training.make_strategy("none"), _TwoWorkers)
    monkeypatch.setattr(runner, "cluster_strategy", lambda: _TwoWorkers())
    ds = make_dataset()
    empty = masked_set_from_items(ds, [], [])
    cfg = make_retrain_config({"name": "t", "selection": "s.json", "mode": "fast", "methods": [{"name": "continued"}]})
    with pytest.raises(UserError, match=r"^mode 'fast' does not run on several workers yet"):
        runner.run_retraining(cfg, base=make_classifier(), dataset=ds, selected=empty, heldout=empty,
                              run_dir="never-written")


def test_every_row_goes_to_exactly_one_replica():
    from classification_models.distributed import replica_rows, rows_of_worker

    assert [replica_rows(11, r, 2).tolist() for r in range(2)] == [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9]]
    assert [rows_of_worker(7, r, 2) for r in range(2)] == [(0, 4), (4, 7)]
    for n in range(0, 12):
        for replicas in (1, 2, 3, 5):
            blocks = [rows_of_worker(n, r, replicas) for r in range(replicas)]
            assert [i for a, b in blocks for i in range(a, b)] == list(range(n))
            rows = np.sort(np.concatenate([replica_rows(n, r, replicas) for r in range(replicas)]))
            assert rows.tolist() == list(range(n))
