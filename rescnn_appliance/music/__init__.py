"""The owner's music: library database, scan with audio-derived mood, and the recommender.

Public API (domain code, no device imports)::

    from rescnn_appliance.music.library import Library
    from rescnn_appliance.music.recommend import Recommender, Choice
    from rescnn_appliance.music.db import DatabaseBusy

    lib = Library.open(settings.database_path,           # migrates after copying the file aside
                       store_readings=settings.privacy.store_readings)
    report = lib.scan(settings.music_folders, progress=True)
    rec = Recommender(lib, settings.recommend, settings.playback)
    choice = rec.next_track("ana", valence, arousal)      # Choice(track_id, path, ..., reason)
    lib.record_feedback("ana", choice.track_id, "like", valence, arousal, choice.mood)
    lib.record_play("ana", choice.track_id, started_at, "complete")
    lib.mark_error(choice.track_id, "playback: not decodable")   # VLC could not play it
    lib.apply_reading_policy(settings.privacy.retention_days)     # on start and daily

    from rescnn_appliance.music.scan_job import ScanJob           # a scan in a child process
    ok, message = ScanJob.start(settings.database_path, folders).wait()
"""
