"""Simulated listeners with hidden tastes press like and skip; like-rate over their first 100 tracks.

    .venv/bin/python benchmarks/recommender_sim.py [--pool eval|tune] [--households 40] [--jobs 1]
        [--listeners 3] [--tracks 2000] [--first-seed N]

Honest protocol: households come from two disjoint pools of seeds, ``tune`` (1000..) for every
design choice and ``eval`` (5000..) reported once per final design; the default run is the
first 40 evaluation households (about 3 minutes of CPU). Figures are mean +- standard error
over households; the ratios are pooled (mean over mean), their standard error by the delta
method with each household's pickers paired.

A synthetic library (artists in genres, each artist's tracks near one spot of the
valence/arousal plane, every track tagged with its artist's genre as a real file's genre tag
would be) goes into a real SQLite file. Each listener has hidden favourite genres
and artists, disliked artists, songs they love (8% of the library), and a mood that drifts slowly between the four moods. They like a
track with probability ``base + genre + artist + loved song + mood fit`` (plus noise), skip the ones they
don't enjoy and sometimes say never-again. Each press is recorded with the listener's valence,
arousal and mood, as the appliance records it. Besides the like-rate, the *expected* like-rate
(the mean probability each press's like was drawn with) estimates the same thing with less
noise. Three pickers serve the same listeners:

- ``random``: any track not played in the last 20;
- ``mood-only``: the recommender with history weight 0;
- ``recommender``: the shipped settings (0.7 mood, 0.3 history, 10% exploration).

Listeners of one household share the database, and (``--shared-taste``, default 0.5) half
their favourite artists and one favourite genre, so later ones benefit from item-item CF;
``--shared-taste 0`` gives every listener an independent taste.
Targets: like-rate >= 1.5x random and >= 1.2x mood-only.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from rescnn_appliance.config import load_settings
from rescnn_appliance.mood import PROTOTYPES
from rescnn_appliance.music.db import Track
from rescnn_appliance.music.library import Library
from rescnn_appliance.music.recommend import Recommender

N_GENRES = 10
# Disjoint household pools: design choices are made on "tune" only; "eval" is reported.
POOLS = {"tune": 1000, "eval": 5000}
DEFAULT_HOUSEHOLDS = 40


def build_library(path: Path, n_tracks: int, rng: np.random.Generator):
    lib = Library.open(path)
    n_artists = n_tracks // 10
    artist_genre = rng.integers(0, N_GENRES, n_artists)
    artist_va = np.clip(rng.normal(0, 0.5, (n_artists, 2)), -0.95, 0.95)
    track_artist = rng.integers(0, n_artists, n_tracks)
    va = np.clip(artist_va[track_artist] + rng.normal(0, 0.2, (n_tracks, 2)), -1, 1)
    with lib.session() as s:
        s.execute(insert(Track), [
            {"path": f"/m/{i}.flac", "title": f"t{i}", "artist": f"artist {track_artist[i]}",
             "genre": f"genre {artist_genre[track_artist[i]]}", "status": "ok", "va_source": "audio", "valence": float(v), "arousal": float(a)}
            for i, (v, a) in enumerate(va)])
    lib.refit_moods()
    return lib, {"genre": artist_genre[track_artist], "artist": track_artist, "va": va,
                 "n_artists": n_artists}


class Listener:
    """Hidden taste; ``react`` returns like / complete / skip / never for a track."""

    def __init__(self, lib_info: dict, rng: np.random.Generator, household: dict,
                 shared: float) -> None:
        self.info, self.rng = lib_info, rng
        n_shared = round(12 * shared)
        self.genres = np.array([household["genre"] if shared > 0 else rng.integers(N_GENRES),
                                rng.integers(N_GENRES)])
        self.artists = set(household["artists"][:n_shared]) | set(
            rng.choice(lib_info["n_artists"], 12 - n_shared, replace=False).tolist())
        self.hated = set(rng.choice(lib_info["n_artists"], 12, replace=False).tolist())
        self.loved = rng.random(len(lib_info["va"])) < 0.08  # songs they love, whoever sings
        self.mood = int(rng.integers(0, 4))
        self.va = PROTOTYPES[self.mood] + rng.normal(0, 0.1, 2)

    def drift(self) -> None:
        if self.rng.random() < 0.05:  # mood consistency: a change every ~20 tracks
            self.mood = int(self.rng.integers(0, 4))
        self.va = np.clip(PROTOTYPES[self.mood] + self.rng.normal(0, 0.1, 2), -1, 1)

    def like_prob(self, i: int) -> float:
        info = self.info
        fit = np.exp(-((info["va"][i] - self.va) ** 2).sum() / (2 * 0.3**2))
        p = 0.03 + 0.25 * fit + 0.25 * (info["genre"][i] in self.genres) \
            + 0.35 * (info["artist"][i] in self.artists) + 0.4 * self.loved[i]
        if info["artist"][i] in self.hated:
            p *= 0.2
        return float(np.clip(p + self.rng.normal(0, 0.05), 0, 1))

    def react(self, i: int) -> str:
        p = self.last_p = self.like_prob(i)  # kept for the expected like-rate; same draws
        if self.rng.random() < p:
            return "like"
        if p < 0.08 and self.rng.random() < 0.2:
            return "never"
        return "skip" if self.rng.random() < 0.7 else "complete"


def run(picker: str, args, seed: int) -> tuple[float, float]:
    """(like-rate, expected like-rate) of one household: the share of tracks liked, and the
    mean probability of a like the listener drew each press from (same picks, less noise)."""
    rng = np.random.default_rng(seed)
    likes = expected = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        lib, info = build_library(Path(tmp) / "lib.sqlite", args.tracks, rng)
        over = {"recommend.mood_weight": 1.0, "recommend.history_weight": 0.0,
                "recommend.explore": 0.0} if picker == "mood-only" else {
                    "recommend.explore": args.explore, "recommend.history_weight": args.history,
                    "recommend.mood_weight": 1.0 - args.history}
        s = load_settings(None, over)
        rec = Recommender(lib, s.recommend, s.playback, seed=seed)
        moods = lib.mood_model()
        household = {"genre": int(rng.integers(N_GENRES)),
                     "artists": rng.choice(info["n_artists"], 12, replace=False).tolist()}
        for u in range(args.listeners):
            name = f"listener{u}"
            lib.add_user(name)
            who = Listener(info, np.random.default_rng(seed * 100 + u), household,
                           args.shared_taste)
            recent: deque = deque(maxlen=20)
            for _ in range(args.first):
                who.drift()
                if picker == "random":
                    while (i := int(rng.integers(0, args.tracks))) in recent:
                        pass
                    recent.append(i)
                    tid = i + 1
                else:
                    choice = rec.next_track(name, *who.va)
                    tid = choice.track_id
                kind = who.react(tid - 1)
                likes += kind == "like"
                expected += who.last_p
                total += 1
                if picker == "random":
                    continue  # it reads no feedback: writing it would change nothing
                # as the appliance does: the listener's valence, arousal and mood with each press
                lib.record_feedback(name, tid, kind, *who.va, mood=moods.mood_of(*who.va))
        lib.close()
    return likes / total, expected / total


def pooled_ratio(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """mean(a) / mean(b) over households, and its standard error (delta method, paired)."""
    r = float(a.mean() / b.mean())
    return r, float(np.std(a - r * b, ddof=1) / np.sqrt(len(a)) / b.mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", choices=sorted(POOLS), default="eval",
                    help="households: eval (seeds 5000..) is reported; tune (1000..) is for choices")
    ap.add_argument("--households", type=int, default=DEFAULT_HOUSEHOLDS)
    ap.add_argument("--jobs", type=int, default=1, help="households run in this many processes")
    ap.add_argument("--listeners", type=int, default=3, help="per household")
    ap.add_argument("--tracks", type=int, default=2000)
    ap.add_argument("--first", type=int, default=100, help="tracks per listener")
    ap.add_argument("--explore", type=float, default=0.1, help="recommend.explore")
    ap.add_argument("--history", type=float, default=0.3, help="recommend.history_weight")
    ap.add_argument("--shared-taste", type=float, default=0.5,
                    help="share of favourite artists (and one genre) common to a household")
    ap.add_argument("--first-seed", type=int, default=None,
                    help="households are seeds first-seed.. (default: the pool's first)")
    args = ap.parse_args()
    first = POOLS[args.pool] if args.first_seed is None else args.first_seed
    print(f"households: seeds {first}..{first + args.households - 1} ({args.households}), "
          f"{args.listeners} listeners x {args.first} tracks each")
    got = {}
    seeds = range(first, first + args.households)
    with ProcessPoolExecutor(args.jobs) as pool:
        for picker in ("random", "mood-only", "recommender"):
            got[picker] = np.array(list(pool.map(partial(run, picker, args), seeds)))
            real, expected = got[picker][:, 0], got[picker][:, 1]
            n = np.sqrt(len(real))
            print(f"{picker:>12}: like-rate {real.mean():.3f} +- {np.std(real, ddof=1) / n:.3f}, "
                  f"expected {expected.mean():.3f} +- {np.std(expected, ddof=1) / n:.3f} "
                  "(mean +- standard error over households)", flush=True)
    for base, target in (("random", 1.5), ("mood-only", 1.2)):
        for col, what in ((0, "like-rate"), (1, "expected like-rate")):
            r, se = pooled_ratio(got["recommender"][:, col], got[base][:, col])
            print(f"recommender / {base:<9} {what:<18} = {r:.3f}x +- {se:.3f} (target >= {target}x)")
        ratio = got["recommender"][:, 0] / got[base][:, 0]
        print(f"  per household like-rate ratio: sd {np.std(ratio, ddof=1):.2f}, "
              f"min {ratio.min():.2f}, max {ratio.max():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
