"""When a campaign would finish: a small discrete simulation of its progress over time.

Not one formula: a campaign's pace is set by its slots (``max_concurrency`` calls at a time,
each holding its slot for a call's length), by the calls-per-second limit, by windows opening
and closing for each group of recipients (the campaign's hours and each number's legal
hours), and by retries, due a policy's delay after an unanswered call. So the recipients are
simulated as cohorts of a fluid (fractions of recipients are fine): at each event (calls
ending, retries falling due, a window opening, the pace allowing more) the free slots are
filled, within the pace, from the cohorts whose window is open, oldest first; a started chunk
is answered at the answer rate and ends after the answered call length, or else after the
unanswered one, and then retries (or ends) as the retry policy says.

Event times are kept on a grid of ``resolution_s`` seconds (nearest), so a long campaign costs
a bounded number of events; :func:`resolution_for` picks it from the work to do.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dialer.policy.attempt_state import Outcome
from dialer.policy.retry import RetryPolicy, retry_delay_s
from dialer.policy.windows import Window

#: Call length and answer rate assumed without enough history of the campaign's own.
DEFAULT_ANSWERED_S = 45.0
DEFAULT_UNANSWERED_S = 25.0
DEFAULT_ANSWER_RATE = 0.35
#: The farthest an estimate looks: a campaign not done by then has no completion time.
HORIZON = timedelta(days=366)
#: Events simulated at most: a campaign not done by then has no completion time.
MAX_EVENTS = 200_000
#: Events the grid is sized for (about: retries and windows add some).
TARGET_EVENTS = 20_000
#: Less than this much of a recipient left counts as none (fluid arithmetic leaves crumbs).
_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class CallProfile:
    """How long calls last (dial to end, seconds) and how many are answered."""

    answered_s: float = DEFAULT_ANSWERED_S
    unanswered_s: float = DEFAULT_UNANSWERED_S
    answer_rate: float = DEFAULT_ANSWER_RATE

    @property
    def mean_s(self) -> float:
        return self.answer_rate * self.answered_s + (1 - self.answer_rate) * self.unanswered_s


@dataclass(frozen=True, slots=True)
class Cohort:
    """``count`` recipients who may be called within ``window``, due from ``ready_at``, with
    ``attempts`` attempts of this run made already."""

    count: float
    window: Window
    ready_at: datetime
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Pace:
    """The limits on starting calls: slots at once, starts per second."""

    max_concurrency: int
    cps: float


@dataclass(frozen=True, slots=True)
class Estimate:
    """``completes_at``: when the last call would end (None: not within :data:`HORIZON`, or a
    cohort's window never opens); ``calls``: calls expected (retries included);
    ``never_callable``: recipients whose window never opens again."""

    completes_at: datetime | None
    calls: float
    never_callable: float


def resolution_for(cohorts: Sequence[Cohort], pace: Pace, profile: CallProfile) -> float:
    """The event grid: one second, coarser for a campaign whose calls would need more than
    about :data:`TARGET_EVENTS` steps at that grain (up to half the shorter call)."""
    total = sum(c.count for c in cohorts)
    rate = min(pace.max_concurrency / max(profile.mean_s, 1.0), max(pace.cps, 1e-9))
    busy_s = total * 2 / max(rate, 1e-9)  # retries included, roughly
    # Never coarser than half the shorter call: a call must span steps for slots to turn over.
    shortest_s = min(profile.answered_s, profile.unanswered_s)
    return max(1.0, min(busy_s / TARGET_EVENTS, shortest_s / 2))


def estimate(
    cohorts: Sequence[Cohort],
    pace: Pace,
    profile: CallProfile,
    retry: RetryPolicy,
    now: datetime,
    *,
    in_flight: float = 0.0,
    resolution_s: float | None = None,
) -> Estimate:
    """Simulate the campaign from ``now`` (see the module docstring). ``in_flight``: calls
    already under way, which hold their slots for about half a call more."""
    step = resolution_s or resolution_for(cohorts, pace, profile)
    sim = _Simulation(pace, profile, retry, now, step)
    for cohort in cohorts:
        if cohort.count > _EPSILON:
            sim.due(cohort.ready_at, cohort.window, cohort.attempts, cohort.count)
    if in_flight > 0:
        sim.ending(0, profile.mean_s / 2, None, 0, in_flight, True)
    return sim.run()


class _Simulation:
    def __init__(
        self, pace: Pace, profile: CallProfile, retry: RetryPolicy, now: datetime, step: float
    ) -> None:
        self.pace = pace
        self.profile = profile
        self.retry = retry
        self.now = now
        self.step = step
        self.end = now + HORIZON
        self.retries = retry.retry_on.allows(Outcome.NO_ANSWER)
        #: Events by grid index: what falls due and what ends then.
        self.events: list[int] = []
        self.known: set[int] = set()
        self.dues: dict[int, list[tuple[Window, int, float]]] = defaultdict(list)
        self.ends: dict[int, list[tuple[Window | None, int, float, bool]]] = defaultdict(list)
        #: Recipients due and waiting, by (window, attempts made), in the order they came.
        self.ready: dict[tuple[int, int], float] = {}
        self.windows: dict[int, Window] = {}
        self.order = itertools.count()
        self.arrival: dict[tuple[int, int], int] = {}
        self.busy = 0.0
        self.calls = 0.0
        self.never = 0.0
        self.last_end: datetime | None = None
        self.allowed: dict[tuple[int, int], bool] = {}
        self.opens: dict[int, datetime] = {}
        self.carry = {True: 0.0, False: 0.0}

    def _index(self, moment: datetime) -> int:
        return max(0, round((moment - self.now).total_seconds() / self.step))

    def _time(self, index: int) -> datetime:
        return self.now + timedelta(seconds=index * self.step)

    def _at(self, index: int) -> None:
        if index not in self.known:
            self.known.add(index)
            heapq.heappush(self.events, index)

    def due(self, moment: datetime, window: Window, attempts: int, count: float) -> None:
        index = self._index(moment)
        self.dues[index].append((window, attempts, count))
        self._at(index)

    def ending(
        self,
        index: int,
        length_s: float,
        window: Window | None,
        attempts: int,
        count: float,
        answered: bool,
    ) -> None:
        """Calls started at grid ``index`` end ``length_s`` later. On the grid a length is a
        whole number of steps, rounded down or up in turn so that on average it is exact
        (always rounding one way would drift a whole campaign by that much per wave)."""
        steps = length_s / self.step
        whole = int(steps)
        self.carry[answered] += steps - whole
        if self.carry[answered] >= 1.0:
            self.carry[answered] -= 1.0
            whole += 1
        index += max(1, whole)
        self.ends[index].append((window, attempts, count, answered))
        self._at(index)
        self.busy += count

    def run(self) -> Estimate:
        # A second's worth of starts may go at once (one at least), or a grid step's worth.
        burst = max(self.pace.cps, 1.0, self.pace.cps * self.step)
        tokens = burst
        last = 0
        processed = 0
        while self.events:
            index = heapq.heappop(self.events)
            self.known.discard(index)
            moment = self._time(index)
            if moment > self.end or processed >= MAX_EVENTS:
                return Estimate(None, self.calls, self.never)
            processed += 1
            tokens = min(burst, tokens + (index - last) * self.step * self.pace.cps)
            last = index
            for window, attempts, count in self.dues.pop(index, ()):
                key = (id(window), attempts)
                self.windows[id(window)] = window
                self.ready[key] = self.ready.get(key, 0.0) + count
                self.arrival.setdefault(key, next(self.order))
            for ended_in, attempts, count, answered in self.ends.pop(index, ()):
                self.busy = max(0.0, self.busy - count)
                self.last_end = moment
                if not answered and ended_in is not None:
                    self._retry(moment, ended_in, attempts, count)
            tokens = self._start(index, moment, tokens)
        if self.ready and sum(self.ready.values()) > _EPSILON:
            return Estimate(None, self.calls, self.never)
        return Estimate(self.last_end or self.now, self.calls, self.never)

    def _allows(self, window: Window, moment: datetime) -> bool:
        """``window.allows``, asked once a minute of each window (hours are set in minutes)."""
        key = (id(window), int(moment.timestamp() // 60))
        allowed = self.allowed.get(key)
        if allowed is None:
            allowed = self.allowed[key] = window.allows(moment)
        return allowed

    def _next_open(self, window: Window, moment: datetime) -> datetime | None:
        """``window.next_open``, kept until that opening: the window stays shut till then."""
        known = self.opens.get(id(window))
        if known is not None and moment < known:
            return known
        opens = window.next_open(moment)
        if opens is not None:
            self.opens[id(window)] = opens
        return opens

    def _retry(self, moment: datetime, window: Window, attempts: int, count: float) -> None:
        if not self.retries or attempts >= self.retry.max_attempts:
            return
        delay_s = retry_delay_s(self.retry, attempts)
        self.due(moment + timedelta(seconds=delay_s), window, attempts, count)

    def _start(self, index: int, moment: datetime, tokens: float) -> float:
        """Fill the free slots from the cohorts whose window is open; schedule the next look
        for those that must wait (their window's opening, the pace's next second)."""
        free = self.pace.max_concurrency - self.busy
        waiting = False
        for key in sorted(self.ready, key=lambda k: self.arrival[k]):
            count = self.ready[key]
            window = self.windows[key[0]]
            if not self._allows(window, moment):
                opens = self._next_open(window, moment)
                if opens is None:
                    self.never += count
                    del self.ready[key]
                else:
                    self._at(max(index + 1, self._index(opens)))
                continue
            take = min(count, free, tokens)
            if take <= _EPSILON:
                waiting = True
                continue
            free -= take
            tokens -= take
            self.calls += take
            attempts = key[1] + 1
            answered = take * self.profile.answer_rate
            if answered > _EPSILON:
                length_s = self.profile.answered_s
                self.ending(index, length_s, window, attempts, answered, True)
            if take - answered > _EPSILON:
                length_s = self.profile.unanswered_s
                self.ending(index, length_s, window, attempts, take - answered, False)
            left = count - take
            if left <= _EPSILON:
                del self.ready[key]
            else:
                self.ready[key] = left
                waiting = True
        if waiting and tokens < min(free, 1.0) and free > _EPSILON:
            # The pace holds them, not the slots: look again when it allows more.
            self._at(index + max(1, round(1.0 / max(self.pace.cps, 1e-9) / self.step)))
        return tokens
