"""Search: the d90 search (grid or adaptive), ask/tell, journal and local runner."""

import collections
import ctypes
import math
import os

from . import _lib, _params
from ._callbacks import CallbackGuard
from ._handle import OwnedHandle

__all__ = ["Search", "Trial", "Asked", "Result", "Point", "TrialResult", "merge_journals"]

_SEARCH = "SEARCH_"

Trial = collections.namedtuple("Trial", "id d kind said lr seed")
Trial.__doc__ = "A trial to run: kind is a name ('fastfood', ... 'identity' for baselines)."
Asked = collections.namedtuple("Asked", "what trial")
Asked.__doc__ = "what is 'trial' (trial set), 'wait' or 'done' (trial None)."
Result = collections.namedtuple("Result", "d90 reached baseline d90_lo d90_hi")
Point = collections.namedtuple("Point", "d best_lr mean spread n_seeds passed")
TrialResult = collections.namedtuple("TrialResult",
                                     "train_metric eval_metric steps seconds status")
TrialResult.__doc__ = ("What tell() needs; status is 0 or INTDIM_ENONFINITE (eval_metric "
                       "-inf) for a diverged trial.")


def _sizes(values, what):
    values = [_lib.as_size(v, f"{what}[{i}]", positive=True) for i, v in enumerate(values)]
    if not values:
        raise ValueError(f"{what} must not be empty")
    return (ctypes.c_size_t * len(values))(*values), len(values)


def _check_callables(**callbacks):
    """TypeError before any work: required callbacks callable, optional ones None or
    callable (a mistake would otherwise surface only when the library first calls it)."""
    required = ("grad_fn", "eval_fn")
    for name, fn in callbacks.items():
        if fn is None and name not in required:
            continue
        if not callable(fn):
            raise TypeError(f"{name} must be callable, not {type(fn).__name__}")


class Search(OwnedHandle):
    """A d90 search for a model with D parameters (intdim_search).

    Search(D, **params): params by name: strategy ('grid', 'adaptive'), fraction, baseline,
    seeds, d_min, d_max, n_d, kind ('fastfood', 'dense', 'sparse'), said, base_seed,
    bootstrap, steps, parallel.
    """

    _destroy_name = "intdim_search_destroy"

    def __init__(self, D, label=None, **params):
        D = _lib.as_size(D, "D", positive=True)
        out = ctypes.c_void_p()
        _lib.check(_lib.lib().intdim_search_create(ctypes.byref(out), D),
                   "intdim_search_create")
        self._own(out.value)
        self._D = int(_lib.lib().intdim_search_D(self._h))
        if label is not None:
            self.set_label(label)
        for name, value in params.items():
            self.set(name, value)

    def set_label(self, label):
        """What the host trains on (model, data, a problem's seed), which the configuration
        cannot see: 1 to 48 characters from [A-Za-z0-9._+:=,/-] ("" = none). Journaled with
        the configuration, so a journal of another label is refused on resume and merge."""
        if not isinstance(label, str):
            raise TypeError(f"label must be a str, not {type(label).__name__}")
        if "\0" in label or not label.isascii():  # C would stop at a NUL; keep what was typed
            raise ValueError(f"label {label!r}: only the characters [A-Za-z0-9._+:=,/-]")
        _lib.check(_lib.lib().intdim_search_set_label(self._h, label.encode("ascii")),
                   "intdim_search_set_label")

    @property
    def label(self):
        return _lib.lib().intdim_search_label(self._h).decode("ascii")

    @classmethod
    def from_journal(cls, path):
        """A search rebuilt from a journal (for reports). A torn last line is dropped with
        an IntdimWarning."""
        out = ctypes.c_void_p()
        _lib.call_warning(_lib.lib().intdim_search_from_journal, ctypes.byref(out),
                          _lib.path_arg(path), what="intdim_search_from_journal")
        self = cls.__new__(cls)
        self._own(out.value)
        self._D = int(_lib.lib().intdim_search_D(self._h))  # the journal's D
        return self

    @property
    def D(self):
        """The model size the search was created with (or read from its journal): the
        length of every theta and theta0 given to run() and run_trial()."""
        self._h  # noqa: B018 - ValueError once closed, like every other member
        return self._D

    # ---- configuration ------------------------------------------------------------
    def set(self, name, value):
        pid = _params.param_id(_SEARCH, name)
        _lib.check(_lib.lib().intdim_search_set(self._h, pid,
                                                _params.param_value(_SEARCH, name, value)))

    def get(self, name):
        return _params.get(_lib.lib().intdim_search_get, self._h,
                           _params.param_id(_SEARCH, name))

    @staticmethod
    def bounds(name):
        return _params.bounds(_lib.lib().intdim_search_param_bounds,
                              _params.param_id(_SEARCH, name))

    def set_d_list(self, ds):
        arr, n = _sizes(ds, "ds")
        _lib.check(_lib.lib().intdim_search_set_d_list(self._h, arr, n))

    def set_lrs(self, lrs):
        lrs = [float(x) for x in lrs]
        if not lrs:
            raise ValueError("lrs must not be empty")
        arr = (ctypes.c_double * len(lrs))(*lrs)
        _lib.check(_lib.lib().intdim_search_set_lrs(self._h, arr, len(lrs)))

    def set_groups(self, sizes):
        arr, n = _sizes(sizes, "group sizes")
        _lib.check(_lib.lib().intdim_search_set_groups(self._h, arr, n))

    def set_train_param(self, name, value):
        """A trainer parameter (by name, as for Trainer) applied to every trial."""
        pid = _params.param_id("TRAIN_", name)
        _lib.check(_lib.lib().intdim_search_set_train_param(
            self._h, pid, _params.param_value("TRAIN_", name, value)))

    def open_journal(self, path):
        """Append told trials to `path`; an existing journal is validated and replayed (a
        torn last line, left by a killed run, is dropped with an IntdimWarning)."""
        _lib.call_warning(_lib.lib().intdim_search_open_journal, self._h, _lib.path_arg(path),
                          what="intdim_search_open_journal")

    # ---- ask / tell -----------------------------------------------------------------
    def ask(self):
        what, tid, d, kind = ctypes.c_int(), ctypes.c_uint64(), ctypes.c_size_t(), \
            ctypes.c_int()
        said, lr, seed = ctypes.c_int(), ctypes.c_double(), ctypes.c_uint64()
        _lib.check(_lib.lib().intdim_search_ask(
            self._h, ctypes.byref(what), ctypes.byref(tid), ctypes.byref(d),
            ctypes.byref(kind), ctypes.byref(said), ctypes.byref(lr), ctypes.byref(seed)))
        if what.value == _lib.constant("ASK_TRIAL"):
            return Asked("trial", Trial(int(tid.value), int(d.value),
                                        _params.kind_name(kind.value), bool(said.value),
                                        lr.value, int(seed.value)))
        if what.value == _lib.constant("ASK_WAIT"):
            return Asked("wait", None)
        return Asked("done", None)

    def tell(self, trial_id, train_metric, eval_metric, steps=0, seconds=0.0, status=0):
        """Record a finished trial; status is 0 or the trial's failure status."""
        _lib.check(_lib.lib().intdim_search_tell(
            self._h, _lib.as_u64(trial_id, "trial_id"), float(train_metric),
            float(eval_metric), _lib.as_u64(steps, "steps"), float(seconds), int(status)))

    # ---- local runner ---------------------------------------------------------------
    def run(self, theta, grad_fn, eval_fn, train_fn=None, theta0=None, progress=None):
        """Run every trial here: grad_fn(step, theta, grad) -> loss, eval_fn(theta) and
        train_fn(theta) -> metric (higher is better), progress(done, total, d, lr,
        eval_metric, seconds_left) returning True stops (IntdimError INTDIM_EINTERRUPTED).
        theta (and theta0, if given) must have self.D elements.
        An exception in any callback (KeyboardInterrupt included) aborts the trial in
        progress, which is un-asked (not told, not journaled: a resumed search runs it
        again), stops the search and is re-raised here; trials told before stay in the
        journal. However it ends, theta holds theta0 again (with theta0 None: its contents
        at the call), so calling run again resumes from the same starting point."""
        D = self.D
        theta = _lib.as_f32(theta, "theta", D, writable=True)
        theta0_ptr = None
        if theta0 is not None:
            theta0_ptr = _lib.as_f32(theta0, "theta0", D).ctypes.data
        _check_callables(grad_fn=grad_fn, eval_fn=eval_fn, train_fn=train_fn,
                         progress=progress)
        guard = CallbackGuard()  # per call: this call's exceptions only
        grad_cb = guard.grad_fn(grad_fn, D)
        train_cb = guard.eval_fn(train_fn, D)
        eval_cb = guard.eval_fn(eval_fn, D)
        progress_cb = guard.search_progress_fn(progress)
        with self._in_call() as h, guard.active():
            status = _lib.lib().intdim_search_run(h, theta.ctypes.data, theta0_ptr, grad_cb,
                                                  train_cb, eval_cb, None, progress_cb, None)
        guard.finish(status, "intdim_search_run")

    def run_trial(self, trial, theta, theta0, grad_fn, eval_fn, train_fn=None):
        """Run one asked Trial exactly as run() would, without telling it (for hosts that
        distribute trials and tell elsewhere). Returns a TrialResult; pass its fields to
        tell(). theta and theta0 must have self.D elements. Callback exceptions are
        re-raised here."""
        D = self.D
        theta = _lib.as_f32(theta, "theta", D, writable=True)
        theta0 = _lib.as_f32(theta0, "theta0", D)
        _check_callables(grad_fn=grad_fn, eval_fn=eval_fn, train_fn=train_fn)
        # per call: run_trial is thread-safe, and one thread's exception must not reach
        # (or stop) another thread's trial
        guard = CallbackGuard()
        grad_cb = guard.grad_fn(grad_fn, D)
        train_cb = guard.eval_fn(train_fn, D)
        eval_cb = guard.eval_fn(eval_fn, D)
        train_m, eval_m = ctypes.c_double(math.nan), ctypes.c_double(math.nan)
        steps, seconds, status = ctypes.c_uint64(), ctypes.c_double(), ctypes.c_int()
        with self._in_call() as h, guard.active():
            rc = self._run_trial_call(h, theta, theta0, grad_cb, train_cb, eval_cb, trial,
                                      train_m, eval_m, steps, seconds, status)
        guard.finish(rc, "intdim_search_run_trial")
        return TrialResult(train_m.value, eval_m.value, int(steps.value), seconds.value,
                           int(status.value))

    @staticmethod
    def _run_trial_call(h, theta, theta0, grad_cb, train_cb, eval_cb, trial, train_m, eval_m,
                        steps, seconds, status):
        return _lib.lib().intdim_search_run_trial(
            h, theta.ctypes.data, theta0.ctypes.data, grad_cb, train_cb, eval_cb, None,
            _lib.as_size(trial.d, "trial.d", positive=True), _params.kind_id(trial.kind),
            int(bool(trial.said)), float(trial.lr), _lib.as_u64(trial.seed, "trial.seed"),
            ctypes.byref(train_m), ctypes.byref(eval_m), ctypes.byref(steps),
            ctypes.byref(seconds), ctypes.byref(status))

    # ---- results --------------------------------------------------------------------
    def result(self):
        """Result(d90, reached, baseline, d90_lo, d90_hi); IntdimError INTDIM_ESTATE while
        the baseline is unknown. Provisional unless `complete` is True."""
        d90, reached, base = ctypes.c_size_t(), ctypes.c_int(), ctypes.c_double(math.nan)
        lo, hi = ctypes.c_size_t(), ctypes.c_size_t()
        # a negative baseline gives a warning (the d90 rule needs a positive one)
        _lib.call_warning(_lib.lib().intdim_search_result,
            self._h, ctypes.byref(d90), ctypes.byref(reached), ctypes.byref(base),
            ctypes.byref(lo), ctypes.byref(hi), what="intdim_search_result")
        return Result(int(d90.value), bool(reached.value), base.value, int(lo.value),
                      int(hi.value))

    @property
    def trials_done(self):
        return int(_lib.lib().intdim_search_trials_done(self._h))

    @property
    def complete(self):
        """True when the search needs no more trials (intdim_search_complete): every
        planned trial is told (grid) or the adaptive bracket is closed, so result() is
        final. False before the plan is frozen (nothing asked or run yet), for an
        interrupted run or a shard's journal: result() is then provisional."""
        return bool(_lib.lib().intdim_search_complete(self._h))

    def points(self):
        """One Point per d with a finished trial, ascending d."""
        lib = _lib.lib()
        rows = []
        for i in range(int(lib.intdim_search_n_points(self._h))):
            d, n_seeds = ctypes.c_size_t(), ctypes.c_size_t()
            lr, mean, spread, passed = ctypes.c_double(), ctypes.c_double(), \
                ctypes.c_double(), ctypes.c_int()
            _lib.check(lib.intdim_search_point(self._h, i, ctypes.byref(d), ctypes.byref(lr),
                                               ctypes.byref(mean), ctypes.byref(spread),
                                               ctypes.byref(n_seeds), ctypes.byref(passed)))
            rows.append(Point(int(d.value), lr.value, mean.value, spread.value,
                              int(n_seeds.value), bool(passed.value)))
        return rows


def merge_journals(inputs, output):
    """Merge journals of one search written by separate processes into `output`.

    inputs: an iterable of paths, or a single path (str, bytes or os.PathLike), which is
    one input. Trials whose results differ between inputs (the first input's row is kept)
    and torn last lines (dropped) are reported with an IntdimWarning."""
    if isinstance(inputs, (str, bytes, os.PathLike)):
        inputs = [inputs]
    inputs = [_lib.path_arg(p, "each input") for p in inputs]
    if not inputs:
        raise ValueError("inputs must not be empty")
    arr = (ctypes.c_char_p * len(inputs))(*inputs)
    _lib.call_warning(_lib.lib().intdim_journal_merge, arr, len(inputs),
                      _lib.path_arg(output, "output"), what="intdim_journal_merge")
