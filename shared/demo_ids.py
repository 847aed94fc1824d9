"""The demo bank's fixed ids: Alice, Bob and Carol and their five accounts, one home for all who name them.

The services' demo data seeds them; the CLI, scripts and tests name them. They never change: clients and
the README use them as they are.
"""

from __future__ import annotations

from uuid import UUID

ALICE = UUID("550e8400-e29b-41d4-a716-446655440001")
BOB = UUID("550e8400-e29b-41d4-a716-446655440002")
CAROL = UUID("550e8400-e29b-41d4-a716-446655440003")

ALICE_MAIN = UUID("660e8400-e29b-41d4-a716-446655440001")
ALICE_SECOND = UUID("660e8400-e29b-41d4-a716-446655440002")
BOB_MAIN = UUID("660e8400-e29b-41d4-a716-446655440003")
BOB_SECOND = UUID("660e8400-e29b-41d4-a716-446655440004")
CAROL_MAIN = UUID("660e8400-e29b-41d4-a716-446655440005")
