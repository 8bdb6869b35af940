"""Part of a player's session, through the Python client openapi-python-client generated from
/openapi.json (tests/tests/clients.rs generates it as the package `edge_client` beside this file
and runs this script with the generator's virtualenv).

    python session.py BASE_URL CA_FILE USERNAME

Only the generated client's own calls: its models for the bodies, its `Client` (public methods)
and `AuthenticatedClient` (the access token as the bearer), verifying TLS against CA_FILE, and
the Connect headers the document declares. Each step asserts what a game client would draw from
the answer; any failure exits non-zero with the status and body it got.
"""

import json
import sys

from edge_client import AuthenticatedClient, Client
from edge_client.api.auth import auth_login, auth_register
from edge_client.api.bodybroker import bodybroker_bootstrap
from edge_client.api.payment import payment_get_inventory
from edge_client.api.quest import quest_accept, quest_get_log, quest_list_available
from edge_client.api.story import story_narrate
from edge_client.models import (
    AicoreAuthV1LoginRequest,
    AicoreAuthV1LoginResponse,
    AicoreAuthV1RegisterRequest,
    AicoreAuthV1RegisterResponse,
    AicoreBodybrokerV1BootstrapRequest,
    AicoreBodybrokerV1BootstrapResponse,
    AicorePaymentV1GetInventoryRequest,
    AicorePaymentV1GetInventoryResponse,
    AicoreQuestV1AcceptRequest,
    AicoreQuestV1AcceptResponse,
    AicoreQuestV1GetLogRequest,
    AicoreQuestV1GetLogResponse,
    AicoreQuestV1ListAvailableRequest,
    AicoreQuestV1ListAvailableResponse,
    AicoreQuestV1QuestStatus,
    AicoreStoryV1NarrateRequest,
    AicoreStoryV1NarrateResponse,
    ConnectProtocolVersion,
    StoryNarrateAccept,
)
from edge_client.types import UNSET

# The Connect headers every method declares: the protocol version and a deadline.
CONNECT = {
    "connect_protocol_version": ConnectProtocolVersion.VALUE_0,
    "connect_timeout_ms": "10000",
}


def call(module, client, body, want, **headers):
    """One call through the generated module; the parsed answer, which must be a `want`."""
    r = module.sync_detailed(client=client, body=body, **CONNECT, **headers)
    if r.status_code != 200 or not isinstance(r.parsed, want):
        sys.exit(f"{module.__name__}: HTTP {r.status_code}: {r.content!r}")
    return r.parsed


def main() -> None:
    base_url, ca, username = sys.argv[1:4]
    password = "lantern-oil-and-wicks"
    public = Client(base_url=base_url, verify_ssl=ca)

    registered = call(
        auth_register,
        public,
        AicoreAuthV1RegisterRequest(username=username, password=password),
        AicoreAuthV1RegisterResponse,
    )
    login = call(
        auth_login,
        public,
        AicoreAuthV1LoginRequest(username=username, password=password),
        AicoreAuthV1LoginResponse,
    )
    assert login.token_type == "Bearer", login
    assert login.player_id == registered.player_id, (login, registered)
    player = AuthenticatedClient(base_url=base_url, token=login.access_token, verify_ssl=ca)

    # No region: the player's own (the start region for a new player), never another's.
    boot = call(
        bodybroker_bootstrap,
        player,
        AicoreBodybrokerV1BootstrapRequest(),
        AicoreBodybrokerV1BootstrapResponse,
    )
    assert boot.player_id == login.player_id, boot
    assert boot.region is not UNSET and boot.region.id == "hearthvale", boot.region
    assert boot.weather is not UNSET and boot.time is not UNSET, boot
    assert boot.degraded in (UNSET, []), f"degraded: {boot.degraded}"
    assert boot.active_quests in (UNSET, []), f"a new player has no quest: {boot.active_quests}"

    available = call(
        quest_list_available,
        player,
        AicoreQuestV1ListAvailableRequest(),
        AicoreQuestV1ListAvailableResponse,
    )
    first = available.quests[0]
    assert first.title == "Lanterns on the Mill Road", [q.title for q in available.quests]

    accepted = call(
        quest_accept,
        player,
        AicoreQuestV1AcceptRequest(quest_id=first.id),
        AicoreQuestV1AcceptResponse,
        idempotency_key=f"accept-{first.id}",
    )
    assert accepted.progress.status == AicoreQuestV1QuestStatus.QUEST_STATUS_ACTIVE, accepted

    inventory = call(
        payment_get_inventory,
        player,
        AicorePaymentV1GetInventoryRequest(),
        AicorePaymentV1GetInventoryResponse,
    ).inventory
    assert inventory.items in (UNSET, []), f"a new player carries nothing: {inventory.items}"
    assert inventory.used in (UNSET, 0), inventory
    assert isinstance(inventory.capacity, int) and inventory.capacity > 0, inventory

    log = call(quest_get_log, player, AicoreQuestV1GetLogRequest(), AicoreQuestV1GetLogResponse)
    [entry] = log.quests
    assert entry.quest_id == first.id, entry
    assert entry.status == AicoreQuestV1QuestStatus.QUEST_STATUS_ACTIVE, entry
    objectives = {o.id: o.description for o in entry.quest.objectives}
    assert objectives == {
        "light-lanterns": "Relight the lanterns along the Mill Road",
        "collect-cut-wicks": "Gather the cut wicks left at the foot of the lantern posts",
    }, objectives
    # Progress per objective: none made yet (zero counts may be left out of the map).
    assert all(v == 0 for v in entry.objectives.additional_properties.values()), entry.objectives

    # A streaming method. Its generated module builds the request but reads a 200 as one JSON
    # object, which an event stream is not (README: Generated clients); if a generator version
    # parses it, that section is out of date.
    narrate = AicoreStoryV1NarrateRequest(cue="the lanterns on the Mill Road", max_tokens=40)
    accept = StoryNarrateAccept.TEXTEVENT_STREAM
    try:
        story_narrate.sync_detailed(client=player, body=narrate, accept=accept, **CONNECT)
    except (TypeError, ValueError, KeyError):
        pass
    else:
        sys.exit("story_narrate parsed an event stream: update README's Generated clients")
    # The way that works: the generated client's own httpx client (base URL, TLS, bearer), one
    # `data:` JSON message per event, ending with `event: end`.
    events = []
    with player.get_httpx_client().stream(
        "POST",
        "/aicore.story.v1.StoryService/Narrate",
        json=narrate.to_dict(),
        headers={"Accept": str(accept), "Connect-Protocol-Version": "1"},
    ) as r:
        assert r.status_code == 200, (r.status_code, r.read())
        kind = "message"
        for line in r.iter_lines():
            if line.startswith("event:"):
                kind = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.removeprefix("data:"))))
                kind = "message"
    assert events and events[-1][0] == "end", events
    told = "".join(
        AicoreStoryV1NarrateResponse.from_dict(data).delta or ""
        for kind, data in events
        if kind == "message"
    )
    assert told.strip(), events

    print(
        f"session ok: player {login.player_id} in {boot.region.name}, accepted {first.title!r} "
        f"({len(objectives)} objectives), inventory 0/{inventory.capacity}, narration of {len(told)} chars"
    )


if __name__ == "__main__":
    main()
