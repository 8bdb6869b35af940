# Textes français (fr) pour les quêtes, la monnaie, le monde et les messages système.
# Syntaxe Project Fluent. Catégories de pluriel (CLDR) : one (0 et 1), many, other.
# Les identifiants de messages doivent être identiques dans tous les fichiers de langue.
# Typographie : espace fine insécable (U+202F) avant ; : ! ? et à l'intérieur des « ».

quest-accepted = Quête acceptée : { $title }
quest-progress = { $objective } : { $count }/{ $target }
quest-completed = Quête terminée : { $title } ! Vous recevez { CROWNS($currency) ->
        [one] { CROWNS($currency) } couronne
        [many] { CROWNS($currency) } de couronnes
       *[other] { CROWNS($currency) } couronnes
    } et { $xp ->
        [one] { $xp } point d'expérience
        [many] { $xp } de points d'expérience
       *[other] { $xp } points d'expérience
    }.
quest-abandoned = Quête abandonnée : { $title }
quest-unavailable = Cette quête n'est pas encore disponible pour vous. Atteignez le niveau { $level } pour la débloquer.
currency-amount = { CROWNS($amount) ->
        [one] { CROWNS($amount) } couronne
        [many] { CROWNS($amount) } de couronnes
       *[other] { CROWNS($amount) } couronnes
    }
items-received = Vous avez reçu { $count ->
        [one] { $count } objet
        [many] { $count } d'objets
       *[other] { $count } objets
    }.
level-up = Niveau supérieur ! Vous atteignez le niveau { $level }.
error-not-enough-gold = Vous n'avez pas assez de couronnes : cela coûte { CROWNS($price) ->
        [one] { CROWNS($price) } couronne
        [many] { CROWNS($price) } de couronnes
       *[other] { CROWNS($price) } couronnes
    }, mais vous n'avez que { CROWNS($balance) ->
        [one] { CROWNS($balance) } couronne
        [many] { CROWNS($balance) } de couronnes
       *[other] { CROWNS($balance) } couronnes
    }.
error-rate-limited = Trop de tentatives. Réessayez dans { $seconds ->
        [one] { $seconds } seconde
        [many] { $seconds } de secondes
       *[other] { $seconds } secondes
    }.
error-session-expired = Votre session a expiré. Veuillez vous reconnecter.
error-server-busy = Le serveur est très sollicité pour le moment. Veuillez réessayer dans un instant.
time-of-day = { $period ->
        [dawn] C'est l'aube.
        [morning] C'est le matin.
        [afternoon] C'est l'après-midi.
        [evening] C'est le soir.
       *[night] C'est la nuit.
    }
season-now = { $season ->
        [spring] C'est le printemps.
        [summer] C'est l'été.
        [autumn] C'est l'automne.
       *[winter] C'est l'hiver.
    }
game-clock = Il est { $hour } h { NUMBER($minute, minimumIntegerDigits: 2) }.
weather-now = { $condition ->
        [CONDITION_CLEAR] Le ciel est dégagé.
        [CONDITION_CLOUDY] Le temps est nuageux.
        [CONDITION_RAIN] Il pleut.
        [CONDITION_STORM] Une tempête fait rage.
        [CONDITION_SNOW] Il neige.
        [CONDITION_FOG] Le brouillard s'étend sur la contrée.
       *[other] Le temps change.
    }
days-until-festival = La fête de la Lune des moissons commence dans { $days ->
        [one] { $days } jour
        [many] { $days } de jours
       *[other] { $days } jours
    }.
player-joined = { $name } a rejoint la partie.
friends-online = { $count ->
        [one] { $count } ami est en ligne.
        [many] { $count } d'amis sont en ligne.
       *[other] { $count } amis sont en ligne.
    }
