# Polskie (pl) teksty dla zadań, waluty, świata gry i komunikatów systemowych.
# Składnia Project Fluent. Kategorie liczby mnogiej (CLDR): one, few, many, other.
# Identyfikatory wiadomości muszą być takie same we wszystkich plikach językowych.

quest-accepted = Przyjęto zadanie: { $title }
quest-progress = { $objective }: { $count }/{ $target }
quest-completed = Zadanie ukończone: { $title }! Otrzymujesz { CROWNS($currency) ->
        [one] { CROWNS($currency) } koronę
        [few] { CROWNS($currency) } korony
        [many] { CROWNS($currency) } koron
       *[other] { CROWNS($currency) } korony
    } i { $xp ->
        [one] { $xp } punkt doświadczenia
        [few] { $xp } punkty doświadczenia
        [many] { $xp } punktów doświadczenia
       *[other] { $xp } punktu doświadczenia
    }.
quest-abandoned = Porzucono zadanie: { $title }
quest-unavailable = To zadanie nie jest jeszcze dla ciebie dostępne. Osiągnij poziom { $level }, aby je odblokować.
currency-amount = { CROWNS($amount) ->
        [one] { CROWNS($amount) } korona
        [few] { CROWNS($amount) } korony
        [many] { CROWNS($amount) } koron
       *[other] { CROWNS($amount) } korony
    }
items-received = Otrzymano { $count ->
        [one] { $count } przedmiot
        [few] { $count } przedmioty
        [many] { $count } przedmiotów
       *[other] { $count } przedmiotu
    }.
level-up = Nowy poziom! Osiągasz poziom { $level }.
error-not-enough-gold = Za mało koron: to kosztuje { CROWNS($price) ->
        [one] { CROWNS($price) } koronę
        [few] { CROWNS($price) } korony
        [many] { CROWNS($price) } koron
       *[other] { CROWNS($price) } korony
    }, a masz tylko { CROWNS($balance) ->
        [one] { CROWNS($balance) } koronę
        [few] { CROWNS($balance) } korony
        [many] { CROWNS($balance) } koron
       *[other] { CROWNS($balance) } korony
    }.
error-rate-limited = Zbyt wiele prób. Spróbuj ponownie za { $seconds ->
        [one] { $seconds } sekundę
        [few] { $seconds } sekundy
        [many] { $seconds } sekund
       *[other] { $seconds } sekundy
    }.
error-session-expired = Twoja sesja wygasła. Zaloguj się ponownie.
error-server-busy = Serwer jest obecnie przeciążony. Spróbuj ponownie za chwilę.
time-of-day = { $period ->
        [dawn] Świta.
        [morning] Jest ranek.
        [afternoon] Jest popołudnie.
        [evening] Jest wieczór.
       *[night] Jest noc.
    }
season-now = { $season ->
        [spring] Jest wiosna.
        [summer] Jest lato.
        [autumn] Jest jesień.
       *[winter] Jest zima.
    }
game-clock = Jest godzina { $hour }:{ NUMBER($minute, minimumIntegerDigits: 2) }.
weather-now = { $condition ->
        [CONDITION_CLEAR] Niebo jest bezchmurne.
        [CONDITION_CLOUDY] Jest pochmurno.
        [CONDITION_RAIN] Pada deszcz.
        [CONDITION_STORM] Szaleje burza.
        [CONDITION_SNOW] Pada śnieg.
        [CONDITION_FOG] Nad okolicą wisi gęsta mgła.
       *[other] Pogoda się zmienia.
    }
days-until-festival = Święto Księżyca Żniw zaczyna się za { $days ->
        [one] { $days } dzień
        [few] { $days } dni
        [many] { $days } dni
       *[other] { $days } dnia
    }.
player-joined = { $name } dołącza do gry.
friends-online = { $count ->
        [one] { $count } znajomy jest online.
        [few] { $count } znajomych jest online.
        [many] { $count } znajomych jest online.
       *[other] { $count } znajomego jest online.
    }
