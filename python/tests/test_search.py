"""d90 search from Python on a small version of Li et al.'s toy problem: the local runner,
ask/tell, the journal, and Ctrl-C in the middle of a search."""
import math
import os
import signal
import warnings

import numpy as np
import pytest

import intdim
from intdim import _lib

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


def grad_failing_at(toy, call):
    """toy's gradient, raising RuntimeError("grad failed") at its call-th call (from 1)."""
    def grad(step, theta, grad_out):
        if toy.grad_calls + 1 == call:
            toy.grad_calls += 1
            raise RuntimeError("grad failed")
        return toy.grad(step, theta, grad_out)
    return grad


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


def test_keyboard_interrupt_keeps_the_journal_and_resumes(tmp_path, sigint_raises):
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


def test_search_rebuilt_from_a_journal_checks_buffers_against_its_D(tmp_path):
    # Search.from_journal used to take D from len(theta): a shorter theta let C read and
    # write past its end. Now D comes from the library (intdim_search_D).
    journal = tmp_path / "a.journal"
    run_search(journal).close()
    toy = Toy()
    trial = intdim.search.Trial(0, GROUPS, "fastfood", False, 0.05, 7)
    with intdim.Search.from_journal(journal) as s:
        assert s.D == D
        short = np.zeros(D // 2, np.float32)
        full = np.zeros(D, np.float32)
        with pytest.raises(ValueError, match=f"theta must have {D} elements, got {D // 2}"):
            s.run_trial(trial, short, full, toy.grad, toy.metric)
        with pytest.raises(ValueError, match=f"theta0 must have {D} elements, got {D // 2}"):
            s.run_trial(trial, full, short, toy.grad, toy.metric)
        with pytest.raises(ValueError, match=f"theta must have {D} elements, got {D // 2}"):
            s.run(short, toy.grad, toy.metric)
        with pytest.raises(ValueError, match=f"theta0 must have {D} elements, got {D - 1}"):
            s.run(full, toy.grad, toy.metric, theta0=np.zeros(D - 1, np.float32))
        assert toy.grad_calls == 0  # nothing reached C
        r = s.run_trial(trial, full, np.zeros(D, np.float32), toy.grad, toy.metric)
        assert r.status == 0 and r.steps == STEPS and toy.grad_calls == STEPS
        assert 0.0 <= r.eval_metric <= 1.0
    with intdim.Search(np.int64(D)) as s:
        assert s.D == D
        with pytest.raises(ValueError, match=f"theta must have {D} elements, got {D + 1}"):
            s.run(np.zeros(D + 1, np.float32), toy.grad, toy.metric)


def test_search_refuses_misaligned_host_buffers():
    odd = np.frombuffer(bytearray(4 * D + 1), np.float32, count=D, offset=1)
    toy = Toy()
    trial = intdim.search.Trial(0, GROUPS, "fastfood", False, 0.05, 7)
    with intdim.Search(D) as s:
        configure(s)
        with pytest.raises(ValueError, match="theta must be aligned"):
            s.run(odd, toy.grad, toy.metric)
        with pytest.raises(ValueError, match="theta0 must be aligned"):
            s.run(np.zeros(D, np.float32), toy.grad, toy.metric, theta0=odd)
        with pytest.raises(ValueError, match="theta0 must be aligned"):
            s.run_trial(trial, np.zeros(D, np.float32), odd, toy.grad, toy.metric)
        assert toy.grad_calls == 0


def test_search_integer_arguments_are_checked():
    for bad in (-1, 0, 2**64 + D):
        with pytest.raises(ValueError, match=r"D must be an integer in \[1, "):
            intdim.Search(bad)
    with intdim.Search(D) as s:
        with pytest.raises(ValueError, match=r"ds\[1\]"):
            s.set_d_list([2, -3])
        s.set_d_list(np.array([2, 3]))  # numpy integers are fine
        with pytest.raises(ValueError, match="trial.seed"):
            s.run_trial(intdim.search.Trial(0, 2, "fastfood", False, 0.05, -1),
                        np.zeros(D, np.float32), np.zeros(D, np.float32), Toy().grad,
                        Toy().metric)
        with pytest.raises(ValueError, match="trial_id"):
            s.tell(-1, 0.0, 0.0)


def test_merge_journals_takes_a_single_path_as_one_input(tmp_path):
    # a str used to be iterated character by character
    journal = tmp_path / "a.journal"
    with run_search(journal) as s:
        expected = s.result()
    for single in (str(journal), journal, os.fsencode(journal)):
        merged = tmp_path / "merged.journal"
        intdim.merge_journals(single, merged)
        with intdim.Search.from_journal(merged) as again:
            assert again.result() == expected
            assert again.trials_done == len(DS) + 1
    with pytest.raises(TypeError, match="each input"):
        intdim.merge_journals([journal, 3], tmp_path / "never.journal")


def tear_last_line(path, n_bytes=5):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - n_bytes)


def test_torn_journal_line_is_reported_as_a_warning(tmp_path):
    journal = tmp_path / "torn.journal"
    run_search(journal).close()
    tear_last_line(journal)
    # from_journal: the torn row is dropped with a warning, every time (the same message
    # left by the previous call is not mistaken for "no new warning")
    for _ in range(2):
        with pytest.warns(intdim.IntdimWarning, match="torn last line") as record:
            with intdim.Search.from_journal(journal) as s:
                assert s.trials_done == len(DS)  # one of len(DS) + 1 dropped
        assert len(record) == 1
        assert record[0].filename == __file__  # points at the caller
    # merge: the torn input is reported
    merged = tmp_path / "merged.journal"
    with pytest.warns(intdim.IntdimWarning, match="1 torn last lines dropped"):
        intdim.merge_journals([journal], merged)
    # a clean journal, right after those warnings, gives none (the stale message in
    # intdim_last_error() is not taken for a new warning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with intdim.Search.from_journal(merged) as s:
            assert s.trials_done == len(DS)
    # open_journal drops the torn line from the file with a warning, once
    with pytest.warns(intdim.IntdimWarning, match="torn last line"):
        run_search(journal).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with run_search(journal) as s:
            assert s.trials_done == len(DS) + 1
        # a failure's message is not a warning either
        with pytest.raises(intdim.IntdimError):
            intdim.Search.from_journal(tmp_path / "missing.journal")
        with intdim.Search.from_journal(journal):
            pass


def test_callback_exception_aborts_the_trial_in_progress_as_documented(tmp_path):
    # The trial in progress is aborted (no callback after the exception) and un-asked (not
    # journaled), as Search.run's docstring says; trials told before stay.
    journal = tmp_path / "a.journal"
    toy = Toy()
    calls_at_error = STEPS + 10  # in the middle of the second trial

    grad = grad_failing_at(toy, calls_at_error)

    with intdim.Search(D) as s:
        configure(s)
        s.open_journal(journal)
        with pytest.raises(RuntimeError, match="grad failed"):
            s.run(np.zeros(D, np.float32), grad, toy.metric, theta0=np.zeros(D, np.float32))
        assert toy.grad_calls == calls_at_error  # stopped at once, not after the trial
        assert s.trials_done == 1
    with intdim.Search.from_journal(journal) as again:
        assert again.trials_done == 1
    doc = " ".join(intdim.Search.run.__doc__.split())
    assert "aborts the trial in progress, which is un-asked" in doc
    assert "after the trial in progress" not in doc


def _tell_all(s, metric_of_d):
    while True:
        asked = s.ask()
        if asked.what == "done":
            return
        assert asked.what == "trial"
        m = metric_of_d(asked.trial.d)
        s.tell(asked.trial.id, m, m)


def _two_point_search(baseline):
    """A search over d in {2, 4} with a known baseline, every trial told: d = 4 passes the
    d90 rule (with a warning when the baseline is negative), d = 2 does not."""
    s = intdim.Search(100, baseline=baseline)
    s.set_d_list([2, 4])
    if baseline < 0:
        _tell_all(s, lambda d: -0.5 if d == 4 else -2.0)
    else:
        _tell_all(s, lambda d: 0.95 if d == 4 else 0.5)
    return s


def test_negative_baseline_is_reported_as_a_warning():
    # a loss-like metric (negative baseline): d90 is computed, with a warning saying why it
    # misleads; a positive baseline gives none
    with _two_point_search(-1.0) as s:
        with pytest.warns(intdim.IntdimWarning, match="negative"):
            r = s.result()
        assert r.reached and r.d90 == 4
    with _two_point_search(1.0) as s:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert s.result().d90 == 4


def test_warning_calls_clear_the_message_and_leave_none_of_their_own():
    # call_warning clears intdim_last_error() (intdim_clear_error) before the call: an older
    # failure's message is never reported as a warning, a call without a warning leaves the
    # message empty (the binding writes no marker of its own into it), and a call that warns
    # leaves exactly its warning.
    lib = _lib.lib()
    with pytest.raises(intdim.IntdimError):
        intdim.Projection("fastfood", 100, 200)  # d > D: leaves a failure message
    assert lib.intdim_last_error() != b""
    with _two_point_search(1.0) as s:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert s.result().d90 == 4
        assert lib.intdim_last_error() == b""
    with _two_point_search(-1.0) as s:
        for _ in range(2):  # the same warning again is still this call's warning
            with pytest.warns(intdim.IntdimWarning, match="negative") as record:
                s.result()
            assert len(record) == 1
            assert lib.intdim_last_error().startswith(b"warning")
    assert "_mark_last_error" not in vars(_lib) and "_MARKER" not in vars(_lib)


def test_complete_says_whether_the_result_is_final(tmp_path):
    journal = tmp_path / "a.journal"
    toy = Toy()
    calls_at_error = 2 * STEPS + 10  # in the third trial: two trials told

    grad = grad_failing_at(toy, calls_at_error)

    with intdim.Search(D) as s:
        configure(s)
        assert s.complete is False  # nothing planned yet
        s.open_journal(journal)
        with pytest.raises(RuntimeError, match="grad failed"):
            s.run(np.zeros(D, np.float32), grad, toy.metric, theta0=np.zeros(D, np.float32))
        assert s.trials_done == 2
        assert s.complete is False
    with intdim.Search.from_journal(journal) as partial:
        assert partial.trials_done == 2
        assert partial.complete is False
    with run_search(journal) as resumed:  # the missing trials
        assert resumed.complete is True
    with intdim.Search.from_journal(journal) as finished:
        assert finished.complete is True
        assert finished.trials_done == len(DS) + 1
    # ask/tell: complete only once the last planned trial is told
    with intdim.Search(100, baseline=1.0) as s:
        s.set_d_list([2, 4])
        first = s.ask()
        assert first.what == "trial" and s.complete is False
        s.tell(first.trial.id, 0.5, 0.5)
        assert s.complete is False
        _tell_all(s, lambda d: 0.95)
        assert s.complete is True
    doc = " ".join(intdim.Search.complete.__doc__.split())
    assert "provisional" in doc


def test_search_callback_returning_a_string_is_a_type_error():
    toy = Toy()
    with intdim.Search(D) as s:
        configure(s)
        with pytest.raises(TypeError, match="eval_fn returned str '1.0'"):
            s.run(np.zeros(D, np.float32), toy.grad, lambda theta: "1.0")
        assert s.trials_done == 0


def test_concurrent_run_trials_keep_their_exceptions_apart():
    """run_trial is thread-safe: one thread's failing trial must neither stop nor fail
    another thread's trial running at the same time. (With one exception slot shared by
    the calls, B failed here whenever its next callback started before A's call returned:
    in about half of the runs, as that is a race.)"""
    import threading
    with intdim.Search(D) as s:
        configure(s)
        s.set("baseline", 1.0)
        trial = s.ask().trial
        a_failed = threading.Event()
        results = {}

        def failing_grad(step, theta, grad):
            if step == 5:
                a_failed.set()
                raise ValueError("trial A failed")
            grad[:] = 0.0
            return 1.0

        toy = Toy()

        def healthy_grad(step, theta, grad):
            if step == 2:
                assert a_failed.wait(30)  # A fails while B is mid-trial
            return toy.grad(step, theta, grad)

        def run(name, grad_fn):
            try:
                results[name] = s.run_trial(trial, np.zeros(D, np.float32),
                                            np.zeros(D, np.float32), grad_fn, toy.metric)
            except BaseException as exc:  # noqa: B902 - recorded for the asserts below
                results[name] = exc

        threads = [threading.Thread(target=run, args=("A", failing_grad)),
                   threading.Thread(target=run, args=("B", healthy_grad))]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert isinstance(results["A"], ValueError) and "trial A failed" in str(results["A"])
        assert isinstance(results["B"], intdim.search.TrialResult), results["B"]
        assert results["B"].status == 0 and results["B"].steps == STEPS


def test_search_callbacks_must_be_callable_before_any_trial():
    toy = Toy()
    with intdim.Search(D) as s:
        configure(s)
        for kwargs in ({"train_fn": "train"}, {"progress": 1}):
            with pytest.raises(TypeError, match="must be callable"):
                s.run(np.zeros(D, np.float32), toy.grad, toy.metric, **kwargs)
        assert toy.grad_calls == 0 and s.trials_done == 0
    with pytest.raises(ValueError, match="closed"):
        s.D


def test_label_is_journaled_and_must_match(tmp_path):
    journal = str(tmp_path / "labelled.journal")
    toy = Toy()
    with intdim.Search(D, label="toy:groups=6") as s:
        configure(s)
        assert s.label == "toy:groups=6"
        s.open_journal(journal)
        s.run(np.zeros(D, np.float32), toy.grad, toy.metric)
    with intdim.Search.from_journal(journal) as r:
        assert r.label == "toy:groups=6"
    with intdim.Search(D, label="toy:groups=7") as other:
        configure(other)
        with pytest.raises(intdim.IntdimError, match="label=toy:groups=6"):
            other.open_journal(journal)
    with intdim.Search(D) as s:
        for bad in ("two words", "x" * 49):
            with pytest.raises(intdim.IntdimError):
                s.set_label(bad)
        with pytest.raises(TypeError):
            s.set_label(3)
        assert s.label == ""


def test_label_text_that_c_would_cut_is_refused():
    with intdim.Search(D) as s:
        for bad in ("ab\x00cd", "caf\u00e9"):
            with pytest.raises(ValueError):
                s.set_label(bad)
        assert s.label == ""
