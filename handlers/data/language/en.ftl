# English (en) message catalogue for quests, economy, world state and system notices.
# Project Fluent syntax. Plural categories (CLDR): one, other.
# Message ids must stay identical across every locale file.
#
# Content packs (README): a pack's language/en.ftl is merged over this file, each message and term
# by its id (a new <locale>.ftl adds a locale). The same id replaces the shipped entry whole, a
# new one is added, and none is ever removed.

quest-accepted = Quest accepted: { $title }
quest-progress = { $objective }: { $count }/{ $target }
quest-completed = Quest completed: { $title }! You earn { CROWNS($currency) ->
        [one] { CROWNS($currency) } crown
       *[other] { CROWNS($currency) } crowns
    } and { $xp ->
        [one] { $xp } experience point
       *[other] { $xp } experience points
    }.
quest-abandoned = Quest abandoned: { $title }
quest-unavailable = This quest isn't available to you yet. Reach level { $level } to unlock it.
currency-amount = { CROWNS($amount) ->
        [one] { CROWNS($amount) } crown
       *[other] { CROWNS($amount) } crowns
    }
items-received = You received { $count ->
        [one] { $count } item
       *[other] { $count } items
    }.
level-up = Level up! You are now level { $level }.
error-not-enough-gold = Not enough crowns: this costs { CROWNS($price) ->
        [one] { CROWNS($price) } crown
       *[other] { CROWNS($price) } crowns
    }, but you only have { CROWNS($balance) ->
        [one] { CROWNS($balance) } crown
       *[other] { CROWNS($balance) } crowns
    }.
error-rate-limited = You're doing that too often. Try again in { $seconds ->
        [one] { $seconds } second
       *[other] { $seconds } seconds
    }.
error-session-expired = Your session has expired. Please log in again.
error-server-busy = The server is busy right now. Please try again in a moment.
time-of-day = { $period ->
        [dawn] Dawn is breaking.
        [morning] It is morning.
        [afternoon] It is afternoon.
        [evening] It is evening.
       *[night] It is night.
    }
season-now = { $season ->
        [spring] It is spring.
        [summer] It is summer.
        [autumn] It is autumn.
       *[winter] It is winter.
    }
game-clock = It is { $hour }:{ NUMBER($minute, minimumIntegerDigits: 2) }.
weather-now = { $condition ->
        [CONDITION_CLEAR] The sky is clear.
        [CONDITION_CLOUDY] It is cloudy.
        [CONDITION_RAIN] It is raining.
        [CONDITION_STORM] A storm is raging.
        [CONDITION_SNOW] It is snowing.
        [CONDITION_FOG] Fog hangs over the land.
       *[other] The weather is turning.
    }
days-until-festival = The Harvest Moon festival begins in { $days ->
        [one] { $days } day
       *[other] { $days } days
    }.
player-joined = { $name } has joined the game.
friends-online = { $count ->
        [one] { $count } friend is online.
       *[other] { $count } friends are online.
    }
