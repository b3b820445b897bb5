"""d90 search from Python on a small version of Li et al.'s toy problem: the local runner,
ask/tell, the journal, and Ctrl-C in the middle of a search."""
import math
import os
import signal

import numpy as np
import pytest

import intdim

GROUPS, SIZE = 6, 20
D = GROUPS * SIZE
DS = [2, 3, 6, 12]
STEPS = 300


class Toy:
    """Group k of SIZE entries must sum to target k. Metric: fraction of groups solved.
    Its intrinsic dimension is GROUPS: with d < GROUPS at most d groups can be solved."""

    def __init__(self):
        self.targets = np.linspace(-1, 1, GROUPS).astype(np.float32)
        self.grad_calls = 0
        self.interrupt_at_call = None

    def grad(self, step, theta, grad):
        self.grad_calls += 1
        if self.grad_calls == self.interrupt_at_call:
            os.kill(os.getpid(), signal.SIGINT)
        resid = theta.reshape(GROUPS, SIZE).sum(axis=1) - self.targets
        grad.reshape(GROUPS, SIZE)[:] = resid[:, None]
        return 0.5 * float(np.dot(resid, resid))

    def metric(self, theta):
        resid = theta.reshape(GROUPS, SIZE).sum(axis=1) - self.targets
        return float(np.mean(np.abs(resid) < 0.05))


def configure(search):
    search.set_d_list(DS)
    search.set_lrs([0.05])
    search.set("steps", STEPS)
    search.set("seeds", 1)


def run_search(journal=None, toy=None, **kw):
    toy = toy or Toy()
    search = intdim.Search(D, **kw)
    configure(search)
    if journal is not None:
        search.open_journal(journal)
    theta = np.zeros(D, np.float32)
    search.run(theta, toy.grad, toy.metric, theta0=np.zeros(D, np.float32))
    return search


def test_local_search_finds_the_intrinsic_dimension():
    with run_search() as s:
        r = s.result()
        assert r.baseline == pytest.approx(1.0)  # full training solves every group
        assert r.reached
        assert GROUPS <= r.d90 <= 2 * GROUPS
        points = s.points()
        assert [p.d for p in points] == DS
        assert points[0].mean < 0.9 and not points[0].passed
        assert points[-1].passed
        assert s.trials_done == len(DS) + 1  # + the baseline trial


def test_ask_tell_from_python():
    toy = Toy()
    with intdim.Search(D, baseline=1.0) as s:
        configure(s)
        told = 0
        while True:
            asked = s.ask()
            if asked.what == "done":
                break
            assert asked.what == "trial"
            trial = asked.trial
            assert trial.kind == "fastfood" and trial.d in DS
            theta = np.zeros(D, np.float32)
            with intdim.Projection(trial.kind, D, trial.d, trial.seed) as p, \
                    intdim.Trainer(p, theta, toy.grad, lr=trial.lr) as t:
                metric = t.run(STEPS, eval_fn=toy.metric)
            s.tell(trial.id, metric, metric, STEPS, 0.0)
            told += 1
        assert told == len(DS)
        assert GROUPS <= s.result().d90 <= 2 * GROUPS
        with pytest.raises(intdim.IntdimError) as info:
            s.tell(trial.id, 0.0, 0.0)  # told twice
        assert info.value.status == intdim.constant("ESTATE")
        with pytest.raises(intdim.IntdimError) as info:
            s.tell(10 ** 9, 0.0, 0.0)
        assert info.value.status == intdim.constant("ENOTFOUND")


def test_search_with_stacked_fastfood_blocks(tmp_path):
    # the setting reaches the trials (the toy problem is still solved at its dimension) and
    # survives the journal
    journal = tmp_path / "b.journal"
    with run_search(journal=journal, fastfood_block=64) as s:
        assert s.get("fastfood_block") == 64
        r = s.result()
        assert r.reached and GROUPS <= r.d90 <= 2 * GROUPS
    assert " block=64\n" in journal.read_text()
    with pytest.raises(intdim.IntdimError):
        intdim.Search(D, fastfood_block=48)


def test_result_before_baseline_is_a_state_error():
    with intdim.Search(D) as s:
        with pytest.raises(intdim.IntdimError) as info:
            s.result()
        assert info.value.status == intdim.constant("ESTATE")


def test_keyboard_interrupt_keeps_the_journal_and_resumes(tmp_path):
    journal = tmp_path / "search.journal"
    toy = Toy()
    toy.interrupt_at_call = 2 * STEPS + 10  # during the third trial
    with pytest.raises(KeyboardInterrupt):
        run_search(journal, toy)
    with intdim.Search.from_journal(journal) as partial:
        assert partial.trials_done == 2  # the two finished trials, nothing torn or failed
    resumed_toy = Toy()
    with run_search(journal, resumed_toy) as resumed, run_search() as fresh:
        assert resumed_toy.grad_calls == (len(DS) + 1 - 2) * STEPS  # only the missing ones
        assert resumed.result() == fresh.result()
        assert resumed.points() == fresh.points()


def test_exception_in_eval_stops_the_search():
    toy = Toy()
    calls = []

    def bad_metric(theta):
        calls.append(1)
        raise RuntimeError("metric failed")

    with intdim.Search(D) as s:
        configure(s)
        with pytest.raises(RuntimeError, match="metric failed"):
            s.run(np.zeros(D, np.float32), toy.grad, bad_metric)
        assert len(calls) == 1
        assert toy.grad_calls <= STEPS


def test_merge_and_reopen_journal(tmp_path):
    journal = tmp_path / "a.journal"
    merged = tmp_path / "merged.journal"
    with run_search(journal) as s:
        expected = s.result()
    intdim.merge_journals([journal], merged)
    with intdim.Search.from_journal(merged) as again:
        assert again.result() == expected


def test_search_parameters_by_name():
    with intdim.Search(D, strategy="adaptive", kind="sparse", fraction=0.8) as s:
        assert s.get("strategy") == intdim.constant("STRATEGY_ADAPTIVE")
        assert s.get("kind") == intdim.constant("PROJ_SPARSE")
        assert s.get("fraction") == pytest.approx(0.8)
        assert math.isnan(s.get("baseline"))
        with pytest.raises(ValueError):
            s.set_d_list([])
        with pytest.raises(intdim.IntdimError):
            s.set("fraction", 2.0)


def test_run_trial_then_tell_matches_the_local_runner():
    toy = Toy()
    theta0 = np.zeros(D, np.float32)
    with intdim.Search(D) as s, run_search() as local:
        configure(s)
        while True:
            asked = s.ask()
            if asked.what == "done":
                break
            r = s.run_trial(asked.trial, np.zeros(D, np.float32), theta0, toy.grad,
                            toy.metric, train_fn=toy.metric)
            assert r.status == 0 and r.steps == STEPS
            s.tell(asked.trial.id, r.train_metric, r.eval_metric, r.steps, r.seconds,
                   r.status)
        assert s.result() == local.result()
        assert s.points() == local.points()
