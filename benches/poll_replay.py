#!/usr/bin/env python3
"""The poll schedule replayed on the time-to-image bench's seeded jobs, without processes or
sockets: how many requests a job costs and how long after its end the end is noticed.

    python3 benches/poll_replay.py            # the schedule as it is, over 30 seeds
    python3 benches/poll_replay.py --toward-open 1.0 --dense 0.25

It models `src/jobs/poll/schedule.rs` (the planner with history) in a few lines, to try a change
of its constants in seconds before measuring it with `time_to_image.py`; the Rust code and its
paused-clock tests are what the server does. The jobs are the bench's (`durations`): queue 0-3 s,
run lognormal with median 12 s and p90 30 s; 6 warm-up jobs make the first history and every
job that ends joins it, as in the bench; answers take no time.
"""

import argparse
import math
import statistics

from time_to_image import durations

# src/jobs/poll/schedule.rs
MIN_INTERVAL = 0.25
SPARSE = 2.0
FIRST_WITH_HISTORY = 1.0
PER_QUEUE_PLACE = 0.5
MAX = 5.0
RUNS = 100


def quantile(ordered, p):
    return ordered[round((len(ordered) - 1) * p)]


def one_job(queue, finish, history, a):
    """Requests made for one job, and the time from its end to the poll that saw it."""
    ordered = sorted(history[-RUNS:])
    opens, median, closes = quantile(ordered, a.open), quantile(ordered, 0.5), quantile(ordered, a.close)
    at, polls, running_since = min(opens, FIRST_WITH_HISTORY), 0, None
    while True:
        polls += 1
        if at >= finish:
            return polls, at - finish
        if at < queue:
            places = max(1, math.ceil(queue - at))
            delay = min(max(PER_QUEUE_PLACE * places, MIN_INTERVAL), SPARSE)
        else:
            running_since = at if running_since is None else running_since
            late = max(0.0, running_since - opens)
            o, m, c = opens + late, median + late, closes + late
            if at < o:
                delay = min(max((o - at) * a.toward_open, MIN_INTERVAL), SPARSE)
            else:
                inside = lambda t: a.dense * math.sqrt(max(t, m) / m)
                delay = inside(at) if at < c else inside(c) * at / c
                delay = min(max(delay, MIN_INTERVAL), max(MAX, a.dense))
        at += delay


def replay(seed, a):
    # The journal's lengths are as the server saw them: to the poll that noticed the end.
    history = [sum(durations(seed, i)) for i in range(10_000, 10_000 + a.warmup)]
    out = []
    for index in range(a.jobs):
        queue, run = durations(seed, index)
        polls, late = one_job(queue, queue + run, history, a)
        out.append((polls, late))
        history.append(queue + run + late)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs=2, default=(30, 60), metavar=("FROM", "TO"))
    parser.add_argument("--jobs", type=int, default=36)
    parser.add_argument("--warmup", type=int, default=6)
    parser.add_argument("--dense", type=float, default=0.3)
    parser.add_argument("--toward-open", type=float, default=0.7)
    parser.add_argument("--open", type=float, default=0.10)
    parser.add_argument("--close", type=float, default=0.95)
    a = parser.parse_args()
    polls, lates, medians = [], [], []
    for seed in range(*a.seeds):
        run = replay(seed, a)
        polls += [p for p, _ in run]
        lates += [late for _, late in run]
        medians.append(statistics.median(late for _, late in run))
    print(
        f"{len(polls)} jobs over seeds {a.seeds[0]}-{a.seeds[1] - 1}: {statistics.mean(polls):.1f} requests per job;"
        f" the end noticed after: median {statistics.median(lates):.3f} s, p90 {statistics.quantiles(lates, n=10)[-1]:.3f} s"
        f" (one seed's median: {min(medians):.2f}-{max(medians):.2f} s)"
    )


if __name__ == "__main__":
    main()
