"""The owner's music: library database, scan with audio-derived mood, and the recommender.

Public API (domain code, no device imports)::

    from rescnn_appliance.music.library import Library
    from rescnn_appliance.music.recommend import Recommender, Choice
    from rescnn_appliance.music.db import DatabaseBusy

    lib = Library.open(settings.database_path)           # migrates after copying the file aside
    report = lib.scan(settings.music_folders, progress=True)
    rec = Recommender(lib, settings.recommend, settings.playback)
    choice = rec.next_track("ana", valence, arousal)      # Choice(track_id, path, ..., reason)
    lib.record_feedback("ana", choice.track_id, "like", valence, arousal, choice.mood)
    lib.record_play("ana", choice.track_id, started_at, "complete")
"""
