"""Esports live events (Bot 2): game state from the feeds, the win-probability model, market mapping.

`state`: one GameState per frame of any game's feed and the events between two frames; `lol_livestats`
and `riot_timeline`: League of Legends adapters; `winmodel`: P(team wins | state) and series odds.
"""
