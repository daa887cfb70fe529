"""`asr serve`: the runtime behind a WebSocket / HTTP server, torch-free (aiohttp).

protocol (messages, limits, close codes), decoder (one batched decoding loop in a
thread of its own), app (the aiohttp handlers and the page), command (`asr serve`)
and client (`asr transcribe --server`).
"""
