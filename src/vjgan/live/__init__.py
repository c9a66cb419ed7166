"""Real-time playback of trained runs: audio in, controls (keys, OSC, MIDI, presets), a generator thread,
and outputs (a window, NDI, Syphon, Spout, a virtual camera, recording). Needs `pip install "vjgan[live]"`."""
