"""Pick the next track for a listener: 70% mood fit, 30% what this household has liked.

``score = mood_weight * mood_fit + history_weight * history`` (``settings.recommend``), where

- ``mood_fit`` (0..1) = 0.6 x closeness of the track to the target in the valence/arousal plane
  (Gaussian, sigma 0.35) + 0.4 x (the track is in the target's mood cluster);
- ``history`` (0..1, 0.5 = nothing known) adds up the user's own feedback on the track (weight
  0.4), on its artist (0.4) and on its genre (0.6: the first genre tagged, case folded;
  untagged tracks share none; how much better than the user's average press the presses in
  that genre were, with each other household user's presses counting 0.3 of the user's own)
  and item-item collaborative filtering over every household user's feedback (0.4), each
  squashed to -1..1, and clips the sum to -1..1. Like +1, complete +0.1, skip -0.5; feedback
  given in the target mood counts fully, in other moods 50%, so what someone likes when calm
  matters most when they are calm again.

Never-again tracks never return for that user; the last ``no_repeat`` choices are not repeated;
with probability ``explore`` the pick is limited to tracks the user has not heard. A new user
(no history) gets pure mood fit. Feedback recorded through the library reaches the recommender at
once (it listens), so the very next choice reflects it. Changes to tracks, moods or users made
by any ``Library`` on the same file (the appliance's background scan, ``users remove`` from
the command line) bump ``Library.tracks_revision``, a counter kept in the database; the next
choice after one reloads everything.

Target policy (``settings.playback.target``): ``mirror`` aims at the listener's own
valence/arousal; ``uplift`` starts there and moves ``uplift_step`` per track toward
(``goal_valence``, ``goal_arousal``), restarting from the listener when they drift away.

Example::

    >>> rec = Recommender(lib, settings.recommend, settings.playback)      # doctest: +SKIP
    >>> choice = rec.next_track("ana", valence=-0.4, arousal=-0.3)        # doctest: +SKIP
    >>> choice.reason                                                      # doctest: +SKIP
    'sad; you liked this artist twice'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.dialects import sqlite

from rescnn_appliance.mood import MOODS, MoodModel
from rescnn_appliance.music.db import Feedback, Play, Track, User
from rescnn_appliance.music.library import Library

KIND_WEIGHT = {"like": 1.0, "complete": 0.1, "skip": -0.5}
OTHER_MOOD_SHARE = 0.5
SIGMA = 0.35
CLOSENESS_SHARE = 0.6
# history = clip(sum of these x evidence in -1..1): own track, artist, genre, item-item CF.
# Tuned with benchmarks/recommender_sim.py --pool tune; an artist-level CF term was tried and hurt.
# A single like says little about the track itself (a loved song or just a good genre), so the
# track term was cut from 1.0 to 0.4: at 1.0 liked tracks came back far from the listener's mood.
W_TRACK, W_ARTIST, W_GENRE, W_CF = 0.4, 0.4, 0.6, 0.4
# A genre gathers many presses, so its evidence is how much better than this user's average
# press its presses were, (weights - count x mean) / (count + GENRE_PRIOR), times GENRE_GAIN:
# a plain sum would saturate for every genre heard often, liked or not. The average starts
# from MEAN_PRIOR neutral presses, so a first few likes all in one genre still count for it.
GENRE_PRIOR, GENRE_GAIN, MEAN_PRIOR = 3.0, 3.0, 10.0
# Household genre prior: every other user's genre presses count HOUSE_SHARE of this user's
# own (as their excess over that user's average press), so a listener inherits the household's
# genres at first and their own presses outweigh it as they pile up.
HOUSE_SHARE = 0.3
JITTER = 0.01  # breaks ties between equally good tracks so the same one is not always first
N_SLOTS = len(MOODS) + 1  # one per mood, plus feedback given with no mood

# All feedback summed in SQLite, numbers only: (user, track, mood slot, sum of kind weights,
# likes, any never-again, presses other than never). 50,000 presses load in one query and a
# few numpy calls.
_SLOT = case({m: i for i, m in enumerate(MOODS)}, value=Feedback.mood, else_=len(MOODS))
_FEEDBACK_TOTALS = select(
    Feedback.user_id, Feedback.track_id, _SLOT,
    func.sum(case(KIND_WEIGHT, value=Feedback.kind, else_=0.0)),
    func.sum(case((Feedback.kind == "like", 1), else_=0)),
    func.max(case((Feedback.kind == "never", 1), else_=0)),
    func.sum(case((Feedback.kind == "never", 0), else_=1)),
).group_by(Feedback.user_id, Feedback.track_id, _SLOT)
_FEEDBACK_TOTALS_SQL = str(_FEEDBACK_TOTALS.compile(dialect=sqlite.dialect(),
                                                    compile_kwargs={"literal_binds": True}))


@dataclass(frozen=True)
class Choice:
    """The next track and why it was picked."""

    track_id: int
    path: str
    title: str
    artist: str
    mood: str
    score: float
    reason: str
    duration_s: float | None = None  # from the tags or the decoder; None when unknown


class _UserPrefs:
    """One user's feedback folded into arrays over tracks, artists and genres, per mood.

    The last genre column collects the untagged tracks and is never used as evidence."""

    def __init__(self, n_tracks: int, n_artists: int, n_genres: int) -> None:
        self.track = np.zeros((N_SLOTS, n_tracks), np.float32)
        self.artist = np.zeros((N_SLOTS, n_artists), np.float32)
        self.genre = np.zeros((N_SLOTS, n_genres + 1), np.float32)
        self.genre_n = np.zeros((N_SLOTS, n_genres + 1), np.float32)  # presses but never
        self.track_likes = np.zeros(n_tracks, np.int32)
        self.artist_likes = np.zeros(n_artists, np.int32)
        self.genre_likes = np.zeros(n_genres + 1, np.int32)
        self.never = np.zeros(n_tracks, bool)
        self.heard = np.zeros(n_tracks, bool)
        self.any = False


class Recommender:
    """Scores every usable track for a user and target mood; see the module docstring."""

    def __init__(self, lib: Library, recommend: Mapping[str, Any], playback: Mapping[str, Any],
                 seed: int | None = None) -> None:
        self.lib = lib
        self.mood_weight = float(recommend["mood_weight"])
        self.history_weight = float(recommend["history_weight"])
        self.no_repeat = int(recommend["no_repeat"])
        self.explore = float(recommend["explore"])
        self.target = str(playback["target"])
        self.goal = np.array([playback["goal_valence"], playback["goal_arousal"]], float)
        self.step = float(playback["uplift_step"])
        self.rng = np.random.default_rng(seed)
        self._revision: int | None = None  # lib.tracks_revision this was loaded at
        self._recent: dict[int, deque] = {}
        self._uplift: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # (target, anchor)
        lib.add_listener(self._on_feedback)

    # --- loading ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload tracks and all feedback from the database."""
        lib = self.lib
        revision = lib.tracks_revision  # first: a change during the load shows as a newer one
        self.model: MoodModel = lib.mood_model()
        with lib.session() as s:
            conn = s.connection()  # Core rows: the ORM's per-row bookkeeping is most of a load
            rows = conn.execute(select(Track.id, Track.path, Track.title, Track.artist,
                                       Track.valence, Track.arousal, Track.mood,
                                       Track.duration_s, Track.genre).where(
                Track.status == "ok", Track.valence.is_not(None)).order_by(Track.id)).all()
            # plain tuples from the driver: building 50,000 Rows costs more than the query
            fb = np.array(conn.connection.dbapi_connection.execute(_FEEDBACK_TOTALS_SQL)
                          .fetchall(), np.float64).reshape(-1, 7)
            self._user_ids = {n: i for i, n in s.execute(select(User.id, User.name))}
            plays = s.execute(select(Play.user_id, Play.track_id).order_by(Play.id.desc())
                              .limit(200 * max(1, self.no_repeat))).all()
        self.ids = np.array([r[0] for r in rows], np.int64)
        self.index = {tid: i for i, tid in enumerate(self.ids.tolist())}
        self.paths = [r[1] for r in rows]
        self.titles = [r[2] or "" for r in rows]
        self.artists = [r[3] or "" for r in rows]
        self.durations = [r[7] for r in rows]
        self.va = np.array([(r[4], r[5]) for r in rows], np.float32).reshape(-1, 2)
        mood_of = {m: i for i, m in enumerate(MOODS)}
        self.moods = np.array([mood_of[r[6]] if r[6] in mood_of else
                               int(self.model.mood_index(r[4], r[5])) for r in rows], np.int8)
        artist_keys: dict[str, int] = {}
        art = []
        for i, a in enumerate(self.artists):
            k = " ".join(a.casefold().split()) or f"\0{i}"  # untagged tracks: no shared artist
            art.append(artist_keys.setdefault(k, len(artist_keys)))
        self.artist_idx = np.array(art, np.int64)
        self.n_artists = len(artist_keys)
        genre_keys: dict[str, int] = {}
        first_genres = [" ".join((r[8] or "").split(";")[0].casefold().split()) for r in rows]
        for g in first_genres:
            if g:
                genre_keys.setdefault(g, len(genre_keys))
        self.n_genres = len(genre_keys)
        self.genre_idx = np.array([genre_keys.get(g, self.n_genres) for g in first_genres],
                                  np.int64)
        self._prefs: dict[int, _UserPrefs] = {}
        self._cf_rows: dict[int, int] = {}
        self._cf = np.zeros((0, len(rows)), np.float32)
        self._apply_counts(fb)
        self._recent = {}
        for uid, tid in reversed(plays):
            if uid is not None and tid in self.index:
                self._recent_for(uid).append(tid)
        self._revision = revision

    def _prefs_for(self, uid: int) -> _UserPrefs:
        p = self._prefs.get(uid)
        if p is None:
            p = self._prefs[uid] = _UserPrefs(len(self.ids), self.n_artists, self.n_genres)
            self._cf_rows[uid] = len(self._cf)
            self._cf = np.vstack([self._cf, np.zeros((1, len(self.ids)), np.float32)])
        return p

    def _recent_for(self, uid: int) -> deque:
        return self._recent.setdefault(uid, deque(maxlen=max(1, self.no_repeat)))

    def _apply(self, uid: int, tid: int, kind: str, mood: str | None) -> None:
        i = self.index.get(tid)
        if i is None:
            return
        p = self._prefs_for(uid)
        p.heard[i] = True
        p.any = True
        if kind == "never":
            p.never[i] = True
            return
        w = KIND_WEIGHT.get(kind, 0.0)
        slot = MOODS.index(mood) if mood in MOODS else len(MOODS)
        a, g = self.artist_idx[i], self.genre_idx[i]
        p.track[slot, i] += w
        p.artist[slot, a] += w
        p.genre[slot, g] += w
        p.genre_n[slot, g] += 1
        if kind == "like":
            p.track_likes[i] += 1
            p.artist_likes[a] += 1
            p.genre_likes[g] += 1
        self._cf[self._cf_rows[uid], i] = np.tanh(p.track[:, i].sum())

    def _apply_counts(self, fb: np.ndarray) -> None:
        """All feedback at once, from :data:`_FEEDBACK_TOTALS` rows (user, track, slot,
        weight, likes, never, presses): the arrays :meth:`_apply` builds press by press."""
        if not len(fb) or not len(self.ids):
            return
        users, tids, slots = (fb[:, c].astype(np.int64) for c in range(3))
        weight, likes, never = fb[:, 3].astype(np.float32), fb[:, 4].astype(np.int32), fb[:, 5]
        presses = fb[:, 6].astype(np.float32)
        pos = np.minimum(np.searchsorted(self.ids, tids), len(self.ids) - 1)
        known = self.ids[pos] == tids  # feedback on tracks now out of play is left out
        for uid in dict.fromkeys(users[known].tolist()):  # first-seen order, like _apply
            sel = known & (users == uid)
            p = self._prefs_for(uid)
            i, s = pos[sel], slots[sel]
            a, g = self.artist_idx[i], self.genre_idx[i]
            p.heard[i] = True
            p.any = True
            p.never[i[never[sel] > 0]] = True
            np.add.at(p.track, (s, i), weight[sel])
            np.add.at(p.artist, (s, a), weight[sel])
            np.add.at(p.genre, (s, g), weight[sel])
            np.add.at(p.genre_n, (s, g), presses[sel])
            np.add.at(p.track_likes, i, likes[sel])
            np.add.at(p.artist_likes, a, likes[sel])
            np.add.at(p.genre_likes, g, likes[sel])
            self._cf[self._cf_rows[uid]] = np.tanh(p.track.sum(axis=0))

    def _on_feedback(self, uid: int, tid: int, kind: str, mood: str | None) -> None:
        if self._revision is not None:  # a stale load is replaced before the next choice
            self._apply(uid, tid, kind, mood)

    # --- choosing -----------------------------------------------------------------------

    def _target_for(self, uid: int, valence: float, arousal: float) -> np.ndarray:
        listener = np.array([valence, arousal], float)
        if self.target != "uplift":
            return listener
        state = self._uplift.get(uid)
        if state is None or np.linalg.norm(listener - state[1]) > 2 * self.step \
                or np.linalg.norm(listener - self.goal) < np.linalg.norm(state[0] - self.goal):
            # start (again) where the listener is: first time, or their mood moved on its own
            state = (listener, listener)
        pos, anchor = state
        gap = self.goal - pos
        dist = float(np.linalg.norm(gap))
        self._uplift[uid] = (pos + (gap if dist <= self.step else gap * self.step / dist), anchor)
        return pos

    def _genre_taste(self, p: _UserPrefs, m: int) -> np.ndarray:
        """-1..1 per genre: this user's presses in it against their average press, with the
        other household users' presses (against their own average) as a weaker prior."""
        weight = p.genre[m] + OTHER_MOOD_SHARE * (p.genre.sum(axis=0) - p.genre[m])
        count = p.genre_n[m] + OTHER_MOOD_SHARE * (p.genre_n.sum(axis=0) - p.genre_n[m])
        mean = p.genre.sum() / (float(p.genre_n.sum()) + MEAN_PRIOR)
        excess = weight - count * mean
        for q in self._prefs.values():
            if q is not p:
                q_weight, q_count = q.genre.sum(axis=0), q.genre_n.sum(axis=0)
                q_mean = q_weight.sum() / (float(q_count.sum()) + MEAN_PRIOR)
                excess = excess + HOUSE_SHARE * (q_weight - q_count * q_mean)
                count = count + HOUSE_SHARE * q_count
        taste = np.tanh(GENRE_GAIN * excess / (count + GENRE_PRIOR))
        taste[-1] = 0.0  # untagged tracks: no genre to have a taste for
        return taste

    def _household_likes(self, p: _UserPrefs, i: int) -> int:
        """Likes the other users gave to track ``i``'s genre."""
        return sum(int(q.genre_likes[self.genre_idx[i]]) for q in self._prefs.values() if q is not p)

    def _cf_scores(self, uid: int) -> np.ndarray:
        """Item-item CF: cosine similarity of track columns over users, applied to u's row."""
        R = self._cf
        if len(R) < 2:
            return np.zeros(R.shape[1], np.float32)
        norms = np.sqrt((R * R).sum(axis=0)) + 1e-6
        Rn = R / norms
        mine = R[self._cf_rows[uid]]
        rated = (mine != 0).astype(np.float32)
        num = Rn.T @ (Rn @ mine)
        den = np.abs(Rn).T @ (np.abs(Rn) @ rated) + 1e-6
        return np.clip(num / den, -1.0, 1.0)

    def next_track(self, user: str | None, valence: float, arousal: float) -> Choice | None:
        """The best track now for ``user`` (None: a guest with no history); None if no tracks."""
        if self._revision != self.lib.tracks_revision:
            self.refresh()
        if not len(self.ids):
            return None
        uid = self._user_ids.get(user, -1) if user else -1
        if user and uid == -1:
            self.refresh()
            uid = self._user_ids.get(user, -1)
        target = self._target_for(uid, float(valence), float(arousal))
        m = int(self.model.mood_index(target[0], target[1]))
        d2 = ((self.va - target.astype(np.float32)) ** 2).sum(axis=1)
        mood_fit = CLOSENESS_SHARE * np.exp(-d2 / (2 * SIGMA**2)) + (1 - CLOSENESS_SHARE) * (self.moods == m)

        p = self._prefs.get(uid)
        if p is not None and p.any:
            t_pref = p.track[m] + OTHER_MOOD_SHARE * (p.track.sum(axis=0) - p.track[m])
            a_pref = p.artist[m] + OTHER_MOOD_SHARE * (p.artist.sum(axis=0) - p.artist[m])
            own_t = np.tanh(t_pref)
            own_a = np.tanh(a_pref)[self.artist_idx]
            own_g = self._genre_taste(p, m)[self.genre_idx]
            cf = self._cf_scores(uid)
            history = np.clip(W_TRACK * own_t + W_ARTIST * own_a + W_GENRE * own_g + W_CF * cf,
                              -1.0, 1.0)
        else:
            own_t = own_g = cf = None
            history = np.zeros(len(self.ids), np.float32)
        score = self.mood_weight * mood_fit + self.history_weight * (history + 1.0) / 2.0
        score = score + self.rng.uniform(0.0, JITTER, len(score))

        allowed = np.ones(len(score), bool)
        if p is not None:
            allowed &= ~p.never
        recent = self._recent.get(uid)
        if recent:
            blocked = [self.index[t] for t in recent if t in self.index]
            trial = allowed.copy()
            trial[blocked] = False
            if trial.any():
                allowed = trial
        if not allowed.any():
            return None
        exploring = False
        if self.explore > 0 and self.rng.random() < self.explore:
            fresh = allowed & (~p.heard if p is not None else True)
            if fresh.any():
                allowed, exploring = fresh, True
        i = int(np.argmax(np.where(allowed, score, -np.inf)))
        self._recent_for(uid).append(int(self.ids[i]))
        reason = self._reason(i, m, p, own_t, own_g, cf, exploring)
        return Choice(int(self.ids[i]), self.paths[i], self.titles[i], self.artists[i],
                      MOODS[int(self.moods[i])], float(score[i]), reason, self.durations[i])

    def _reason(self, i: int, m: int, p: _UserPrefs | None, own_t, own_g, cf,
                exploring: bool) -> str:
        parts = [MOODS[int(self.moods[i])]]
        if self.target == "uplift" and MOODS[m] != self.model.mood_of(*self.goal):
            parts[0] += f", on the way to {self.model.mood_of(*self.goal)}"
        if p is not None and p.track_likes[i] > 0 and own_t is not None and own_t[i] > 0:
            n = int(p.track_likes[i])
            parts.append("you liked this track" + ("" if n == 1 else f" {_times(n)}"))
        elif p is not None and p.artist_likes[self.artist_idx[i]] > 0:
            parts.append(f"you liked this artist {_times(int(p.artist_likes[self.artist_idx[i]]))}")
        elif p is not None and own_g is not None and own_g[i] > 0 \
                and self.genre_idx[i] < self.n_genres and p.genre_likes[self.genre_idx[i]] > 0:
            parts.append(f"you liked this genre {_times(int(p.genre_likes[self.genre_idx[i]]))}")
        elif p is not None and own_g is not None and own_g[i] > 0 \
                and self.genre_idx[i] < self.n_genres and (n := self._household_likes(p, i)) > 0:
            parts.append(f"your household liked this genre {_times(n)}")
        elif cf is not None and cf[i] > 0.2:
            parts.append("liked by listeners with your taste")
        elif exploring:
            parts.append("something new for you")
        else:
            parts.append("close to your mood")
        return "; ".join(parts)


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")
