# Deutsche (de) Texte für Quests, Währung, Spielwelt und Systemmeldungen.
# Project-Fluent-Syntax. Pluralkategorien (CLDR): one, other.
# Die Nachrichten-IDs müssen in allen Sprachdateien identisch sein.

quest-accepted = Quest angenommen: { $title }
quest-progress = { $objective }: { $count }/{ $target }
quest-completed = Quest abgeschlossen: { $title }! Du erhältst { CROWNS($currency) ->
        [one] { CROWNS($currency) } Krone
       *[other] { CROWNS($currency) } Kronen
    } und { $xp ->
        [one] { $xp } Erfahrungspunkt
       *[other] { $xp } Erfahrungspunkte
    }.
quest-abandoned = Quest abgebrochen: { $title }
quest-unavailable = Diese Quest ist für dich noch nicht verfügbar. Erreiche Stufe { $level }, um sie freizuschalten.
currency-amount = { CROWNS($amount) ->
        [one] { CROWNS($amount) } Krone
       *[other] { CROWNS($amount) } Kronen
    }
items-received = Du hast { $count ->
        [one] { $count } Gegenstand
       *[other] { $count } Gegenstände
    } erhalten.
level-up = Stufenaufstieg! Du bist jetzt auf Stufe { $level }.
error-not-enough-gold = Nicht genug Kronen: Das kostet { CROWNS($price) ->
        [one] { CROWNS($price) } Krone
       *[other] { CROWNS($price) } Kronen
    }, du hast aber nur { CROWNS($balance) ->
        [one] { CROWNS($balance) } Krone
       *[other] { CROWNS($balance) } Kronen
    }.
error-rate-limited = Nicht so schnell! Versuch es in { $seconds ->
        [one] { $seconds } Sekunde
       *[other] { $seconds } Sekunden
    } erneut.
error-session-expired = Deine Sitzung ist abgelaufen. Bitte melde dich erneut an.
error-server-busy = Der Server ist gerade ausgelastet. Bitte versuch es gleich noch einmal.
time-of-day = { $period ->
        [dawn] Der Morgen dämmert.
        [morning] Es ist Morgen.
        [afternoon] Es ist Nachmittag.
        [evening] Es ist Abend.
       *[night] Es ist Nacht.
    }
season-now = { $season ->
        [spring] Es ist Frühling.
        [summer] Es ist Sommer.
        [autumn] Es ist Herbst.
       *[winter] Es ist Winter.
    }
game-clock = Es ist { $hour }:{ NUMBER($minute, minimumIntegerDigits: 2) } Uhr.
weather-now = { $condition ->
        [CONDITION_CLEAR] Der Himmel ist klar.
        [CONDITION_CLOUDY] Es ist bewölkt.
        [CONDITION_RAIN] Es regnet.
        [CONDITION_STORM] Ein Sturm tobt.
        [CONDITION_SNOW] Es schneit.
        [CONDITION_FOG] Nebel liegt über dem Land.
       *[other] Das Wetter schlägt um.
    }
days-until-festival = Das Erntemondfest beginnt in { $days ->
        [one] { $days } Tag
       *[other] { $days } Tagen
    }.
player-joined = { $name } ist dem Spiel beigetreten.
friends-online = { $count ->
        [one] { $count } Freund ist online.
       *[other] { $count } Freunde sind online.
    }
