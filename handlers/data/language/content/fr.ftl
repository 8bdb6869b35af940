# =============================================================================
# TEXTES DU CONTENU EN FRANÇAIS (fr) — référence pour les traducteurs
# =============================================================================
# status: complete
#
# What players read of the content, in French. English is the source and stays in the content
# TOML (quests.toml, regions.toml, npcs.toml, catalog.toml); this file translates it by content
# id. Keys:
#   quest-<id>-title, quest-<id>-description, quest-<id>-objective-<objective id>
#   region-<id>-name, region-<id>-description
#   npc-<id>-description (the public first sentence of the persona), npc-<id>-name (optional:
#     a proper name stays as it is and needs no line)
#   item-<sku>-name, item-<sku>-description
# One line of plain text per key, no variables. The line "# status: complete" above, in the
# file's head, marks the locale complete: `edge content check` then fails for any text of the
# content this file does not translate, as it does everywhere for a key no content has (a
# renamed quest or objective) and for broken Fluent syntax. Without the line the check reports
# how far the locale is, and a missing text is served in English (and counted).
#
# Adresse au joueur : vous, comme dans language/fr.ftl. Objectifs à l'infinitif. Noms : les noms
# de personnes et de lieux restent (Hearth, Gull's Rest, Ashfen, Ilsen, Ærnholt) ; les parties
# descriptives sont traduites, partout de la même façon :
#   Côte de Saltmere, Hearthvale, Étendues de Dunmar, Marais d'Ashfen, Thornwood, Caldeira de
#   Cinderfall, Confins de Frostholm, Pics de Greyspire, Bassin de Mirrorlake ; le Val (the
#   Vale), la route du Moulin (Mill Road), la Cour Creuse (Hollow Court), la marque de la ronce
#   (briar mark), l'argent-de-sel, les bateaux de nuit, les feux-lanternes (lantern-lights),
#   Saint-Wren, la Lanterne pâle (Pale Lantern), l'Assoiffé (Thirsty One), l'Auvent bleu (Blue
#   Awning), la Salle des Enclumes, les gens du rebord, le marché du Rebord, la porte de Cendre
#   (Ashgate), la halle aux grains, Ølskær la Lanterne vagabonde, la Longue-Nuit, la maison longue.
# Typographie : espace fine insécable (U+202F) avant ; : ! ? et à l'intérieur des « ».

quest-lanterns-on-the-mill-road-title = Lanternes sur la route du Moulin
quest-lanterns-on-the-mill-road-description = Depuis trois nuits, les lanternes de la route du Moulin restent éteintes, et les charretiers de l'orge refusent de l'emprunter après le coucher du soleil. Brenna Hale veut qu'on les rallume toutes, de la porte nord de Hearth jusqu'au moulin à vent de Tarrow, et elle veut savoir qui s'acharne à les éteindre.
quest-lanterns-on-the-mill-road-objective-light-lanterns = Rallumer les lanternes le long de la route du Moulin
quest-lanterns-on-the-mill-road-objective-collect-cut-wicks = Ramasser les mèches coupées au pied des poteaux des lanternes

quest-drill-in-the-guard-yard-title = Exercice dans la cour de la garde
quest-drill-in-the-guard-yard-description = Les mèches n'ont pas été soufflées mais coupées, par quelque chose qui a laissé une épine dans la tresse. Garrick Holt veut que quiconque emprunte la route du Moulin la nuit sache par quel bout tenir une épée : entraînez-vous sur les mannequins de paille de la cour de la garde de Hearth, puis tenez bon face à ses recrues.
quest-drill-in-the-guard-yard-objective-strike-the-pells = Porter des coups nets aux mannequins de paille de la cour de la garde
quest-drill-in-the-guard-yard-objective-spar-with-recruits = Remporter des assauts d'entraînement contre les recrues de Garrick

quest-sheaves-gone-missing-title = Les gerbes disparues
quest-sheaves-gone-missing-description = Quelqu'un fauche l'orge d'Oswin Tarrow au clair de lune et emporte les gerbes vers les hauteurs, laissant le chaume noué en petits nœuds de ronce. Parcourez ses champs, trouvez l'endroit où les voleurs franchissent la haie et suivez leur piste jusqu'à l'orée du Thornwood.
quest-sheaves-gone-missing-objective-find-briar-knots = Trouver les nœuds de ronce noués dans le chaume des champs de Tarrow
quest-sheaves-gone-missing-objective-follow-the-trail = Suivre la piste des voleurs jusqu'à l'orée du Thornwood

quest-the-briar-mark-title = La marque de la ronce
quest-the-briar-mark-description = La piste s'arrête à la vieille grange dîmière, là où le Val cède la place au Thornwood, et sur chaque porte est griffée la marque de la ronce des serviteurs de la Cour Creuse. Brenna veut que les pillards soient chassés, le grain rapporté et la marque effacée du bois par le feu avant qu'elle n'y prenne racine.
quest-the-briar-mark-objective-drive-off-raiders = Chasser de la grange dîmière les pillards marqués de la ronce
quest-the-briar-mark-objective-recover-grain = Rapporter les gerbes volées aux charrettes des Tarrow
quest-the-briar-mark-objective-burn-the-mark = Brûler la marque de la ronce sur les portes de la grange dîmière

quest-herring-and-hearsay-title = Harengs et ouï-dire
quest-herring-and-hearsay-description = Sefa Quill achète le hareng salé au tonneau à Gull's Rest, et depuis peu ses tonneaux arrivent un peu trop lourds et sentent autre chose que le poisson. Renseignez-vous sur le quai, puis forcez quelques tonneaux avant que les charretiers ne les emportent vers l'intérieur des terres.
quest-herring-and-hearsay-objective-ask-the-fishwives = Interroger les poissonnières du quai de Gull's Rest sur les bateaux de nuit
quest-herring-and-hearsay-objective-inspect-barrels = Forcer les tonneaux de harengs dans l'entrepôt de Sefa

quest-signals-on-the-chalk-title = Signaux sur la craie
quest-signals-on-the-chalk-description = Sous les harengs se trouvaient des ballots de toile cirée remplis d'argent-de-sel de Dunmar, ni dédouané ni consigné nulle part. Sefa veut savoir qui le débarque : faites le guet depuis les falaises de craie qui dominent Gull's Rest et notez les signaux de lanterne que les bateaux de nuit adressent au rivage.
quest-signals-on-the-chalk-objective-keep-cliff-watch = Faire le guet sur le sentier des falaises au-dessus de Gull's Rest jusqu'à l'aube
quest-signals-on-the-chalk-objective-copy-the-signals = Noter les signaux de lanterne lancés depuis les bateaux de nuit

quest-into-the-tide-caves-title = Dans les grottes des marées
quest-into-the-tide-caves-description = Corvin Ashdown chasse le phoque au pied de ces falaises depuis l'enfance, et il lit dans les signaux le chemin des grottes des marées sous Gull's Rest. Descendez à marée basse, fouillez les grottes à la recherche de la réserve des contrebandiers et ressortez avant le retour de la mer.
quest-into-the-tide-caves-objective-descend-the-cliff = Descendre la paroi de craie jusqu'à l'entrée des grottes à marée basse
quest-into-the-tide-caves-objective-search-the-caves = Fouiller les grottes des marées à la recherche de la cargaison cachée
quest-into-the-tide-caves-objective-beat-the-tide = Sortir des grottes avant que la marée montante ne les referme

quest-the-tidecallers-bargain-title = Le marché de l'Appeleuse de marées
quest-the-tidecallers-bargain-description = Les grottes renfermaient assez d'argent-de-sel pour acheter un village, chaque ballot frappé de la mouette d'Orla Saltash, qui dirige les bateaux de nuit et dont on dit qu'elle appelle la marée quand elle en a besoin. Garrick Holt est descendu de Hearth à cheval avec les douaniers : affrontez l'équipage d'Orla sur la grève à la nouvelle lune et rapportez son registre.
quest-the-tidecallers-bargain-objective-defeat-the-crew = Vaincre l'équipage d'Orla Saltash sur la grève au pied de Gull's Rest
quest-the-tidecallers-bargain-objective-seize-the-ledger = S'emparer du registre de cargaison d'Orla avant qu'il ne passe par-dessus bord

quest-reeds-for-the-thatch-title = Des roseaux pour le chaume
quest-reeds-for-the-thatch-description = Tamsin Reed s'occupe des nasses à anguilles et des roselières des îles qui bordent Ashfen, et la coupe d'automne a pris du retard. Aidez-la à botteler des roseaux pour les couvreurs de Hearth et à planter des piquets de balisage sur la terre ferme, pour que quiconque rentre chez soi après le crépuscule ait autre chose à suivre que les lumières.
quest-reeds-for-the-thatch-objective-cut-reed = Couper et botteler les roseaux des roselières des îles
quest-reeds-for-the-thatch-objective-drive-stakes = Planter des piquets de balisage le long du chemin ferme entre les îles

quest-do-not-follow-the-lights-title = Ne suivez pas les lumières
quest-do-not-follow-the-lights-description = Hob, le beau-frère de Tamsin, est sorti relever les nasses au crépuscule et n'est jamais revenu ; on a retrouvé sa lanterne qui flottait sur l'eau noire, encore allumée. Suivez les piquets de balisage dans le marais, trouvez Hob avant que les feux-lanternes ne l'entraînent plus loin et ramenez-le chez lui.
quest-do-not-follow-the-lights-objective-find-hobs-traps = Trouver les nasses de Hob parmi les îles de roseaux
quest-do-not-follow-the-lights-objective-find-hob = Retrouver Hob Reed quelque part dans le marais
quest-do-not-follow-the-lights-objective-lead-hob-home = Ramener Hob le long des piquets de balisage sans vous égarer à la suite des lumières

quest-the-bell-of-saint-wren-title = La cloche de Saint-Wren
quest-the-bell-of-saint-wren-description = Hob jure que les lumières chantaient les heures de l'abbaye. Maud Feverfew, dont la grand-mère vendait de l'huile de lampe aux derniers moines de Saint-Wren, raconte que la cloche de l'abbaye tenait autrefois les feux du marais à distance. Rejoignez à gué l'abbaye engloutie, dispersez les lumières rassemblées dans sa nef et faites de nouveau sonner la cloche.
quest-the-bell-of-saint-wren-objective-reach-the-abbey = Rejoindre à gué l'abbaye engloutie de Saint-Wren
quest-the-bell-of-saint-wren-objective-scatter-the-lights = Disperser les feux-lanternes rassemblés dans la nef inondée
quest-the-bell-of-saint-wren-objective-ring-the-bell = Sonner la cloche de l'abbaye depuis la tour à demi engloutie

quest-before-the-first-snow-title = Avant la première neige
quest-before-the-first-snow-description = Depuis onze ans, Ilse Varrow attend quelqu'un qui accepte de la conduire jusqu'à l'Observatoire d'Ilsen, et le col se ferme avec la première neige. Guidez-la le long du sentier en lame de couteau au-dessus des nuages, en élevant des cairns pour que les mules de ravitaillement puissent suivre.
quest-before-the-first-snow-objective-build-cairns = Élever des cairns pour baliser le col de Greyspire
quest-before-the-first-snow-objective-reach-the-observatory = Conduire Ilse Varrow saine et sauve jusqu'à la porte de l'Observatoire

quest-the-broken-orrery-title = Le planétaire brisé
quest-the-broken-orrery-description = Le grand planétaire sous la coupole de l'Observatoire a été dépouillé de son laiton, et ses roues dentées brillent dans les nids des harpies des escarpements, au pied des murailles. Ilse a besoin de chaque roue, ainsi que de la lentille taillée cachée dans la réserve du sommet, avant que la comète ne se lève.
quest-the-broken-orrery-objective-recover-gears = Récupérer les engrenages de laiton du planétaire dans les nids des harpies des escarpements
quest-the-broken-orrery-objective-fetch-the-lens = Rapporter la lentille taillée de la réserve du sommet

quest-the-pale-lantern-returns-title = Le retour de la Lanterne pâle
quest-the-pale-lantern-returns-description = Une fois tous les soixante et un ans, la comète que les anciens astronomes appelaient la Lanterne pâle traverse le ciel de Greyspire, et c'est cette nuit. Défendez la coupole contre la tempête qui arrive avec elle, orientez les miroirs et aidez Ilse à relever sa course, pour la première fois depuis la chute de l'Observatoire.
quest-the-pale-lantern-returns-objective-hold-the-dome = Repousser les spectres d'orage loin de la coupole de l'Observatoire
quest-the-pale-lantern-returns-objective-align-the-mirrors = Orienter les miroirs de la coupole pour suivre la comète
quest-the-pale-lantern-returns-objective-record-the-path = Aider Ilse Varrow à relever la course de la comète dans le ciel

quest-fen-fire-in-the-briar-title = Feu des marais dans les ronces
quest-fen-fire-in-the-briar-description = Au plus profond du Thornwood, Corvin Ashdown a trouvé des feux-lanternes emprisonnés dans des cages de ronces : le même feu pâle qui hante Ashfen, suspendu le long d'un chemin qu'aucun charbonnier n'a jamais tracé. La Cour Creuse rassemble les lumières du marais dans un but inconnu ; suivez les lanternes en cage jusqu'au bout et brisez chaque cage sur votre passage.
quest-fen-fire-in-the-briar-objective-break-the-cages = Briser les cages de ronces qui retiennent les feux du marais
quest-fen-fire-in-the-briar-objective-follow-the-caged-path = Suivre le chemin des lanternes en cage jusqu'au cœur du bois
quest-fen-fire-in-the-briar-objective-defeat-the-briar-warden = Vaincre le gardien des ronces de la Cour Creuse

quest-a-second-sky-title = Un second ciel
quest-a-second-sky-description = Le registre d'Orla Saltash mentionne des cargaisons acheminées à la rame sur le Mirrorlake, les lumières captives de la Cour Creuse étaient destinées à la même rive, et la carte d'Ilse montre la Lanterne pâle reflétée dans le lac une nuit où elle ne se trouvait nulle part dans le vrai ciel. À la prochaine nuit sans vent, ramez sur l'eau immobile et découvrez à qui appartient ce ciel.
quest-a-second-sky-objective-question-the-fishers = Demander aux pêcheurs du Mirrorlake ce qu'ils ont vu dans le second ciel
quest-a-second-sky-objective-row-out = Ramer jusqu'au centre du lac par une nuit sans vent
quest-a-second-sky-objective-close-the-reflection = Refermer le reflet avant que la comète du second ciel ne le traverse

quest-sand-that-sings-title = Le sable qui chante
quest-sand-that-sings-description = Les dunes ont recouvert l'Assoiffé, et depuis que le colosse est enseveli, les vouivres de verre chassent autour de son puits. Mère Saffa de l'Auvent bleu ne mènera pas son sel vers le nord tant que la route ne sera pas sûre : attirez les vouivres ailleurs avec des jarres remplies de pierres, dégagez la tête du roi de pierre et faites passer sa caravane devant le puits.
quest-sand-that-sings-objective-throw-the-jars = Lancer des rangées de jarres remplies de pierres pour éloigner de la route les vouivres en chasse
quest-sand-that-sings-objective-uncover-the-thirsty-one = Dégager du sable la tête couronnée de l'Assoiffé
quest-sand-that-sings-objective-bring-the-caravan-through = Faire passer sans encombre la caravane de l'Auvent bleu devant le puits de l'Assoiffé

quest-the-salamanders-glow-white-title = Les salamandres brillent d'un feu blanc
quest-the-salamanders-glow-white-description = Les salamandres de la fosse de la Salle des Enclumes brillent d'un éclat blanc sans aucun feu sous elles, et les gens du rebord comptent les années depuis que la montagne a respiré pour la dernière fois, en 318. Thora Vennick veut qu'on lise les évents profonds avant que les salles ne décident de couvrir leurs feux, et qu'on sauve les huttes du rebord des nids qui se sont mis à brûler d'eux-mêmes.
quest-the-salamanders-glow-white-objective-read-the-deep-vents = Poser une salamandre sortie de sa boîte sur chacun des évents profonds et lire la couleur de son éclat
quest-the-salamanders-glow-white-objective-put-out-the-nests = Étouffer les nids de salamandres incandescents avant qu'ils n'embrasent les huttes des gens du rebord
quest-the-salamanders-glow-white-objective-report-to-thora = Rapporter à Thora Vennick ce que les salamandres ont révélé aux évents

quest-the-strays-verse-title = Le couplet de la Vagabonde
quest-the-strays-verse-description = Le berger qui chantait le couplet d'Ølskær, la Lanterne vagabonde, est mort pendant la migration d'automne, et personne d'autre ne le connaît en entier. Sigrun d'Ærnholt craint que l'étoile ne s'éteigne si elle manque à la Longue-Nuit : rassemblez ce dont chaque berger se souvient et veillez toute la nuit près de la pierre aux andouillers, là où, dit-on, la vagabonde se lève.
quest-the-strays-verse-objective-gather-the-verse = Écouter ce dont chaque éleveur de rennes se souvient du couplet de la Lanterne vagabonde
quest-the-strays-verse-objective-watch-at-the-stone = Veiller toute la nuit près de la pierre aux andouillers
quest-the-strays-verse-objective-sing-it-back = Chanter le couplet entier à Sigrun d'Ærnholt dans la maison longue

region-saltmere-name = Côte de Saltmere
region-saltmere-description = Des falaises de craie et des villages de pêcheurs de hareng, là où le Val rencontre la mer grise. Les contrebandiers se servent des grottes des marées sous Gull's Rest.
region-hearthvale-name = Hearthvale
region-hearthvale-description = Des champs d'orge, des moulins à vent et le bourg de Hearth, où commencent toutes les routes du Val. Le lieu le plus sûr pour apprendre à manier l'épée.
region-dunmar-name = Étendues de Dunmar
region-dunmar-description = Des dunes rouges que traversent les caravanes du sel. Des colosses à demi ensevelis jalonnent l'ancienne route des rois ; ici, l'eau vaut plus que l'argent.
region-ashfen-name = Marais d'Ashfen
region-ashfen-description = De l'eau noire, des îles de roseaux et l'abbaye engloutie de Saint-Wren. La nuit, des feux-lanternes dérivent au-dessus du marais ; ne les suivez pas.
region-thornwood-name = Thornwood
region-thornwood-description = Des chênes plus vieux que le royaume, enlacés de ronces. Les charbonniers s'en tiennent aux sentiers ; les loups et la Cour Creuse, non.
region-cinderfall-name = Caldeira de Cinderfall
region-cinderfall-description = Un cratère vivant cerclé d'obsidienne. Les salles de forge des nains puisent dans sa chaleur, et le sol reste tiède au toucher, même en hiver.
region-frostholm-name = Confins de Frostholm
region-frostholm-description = Une steppe balayée par le vent sous un soleil pâle. Les clans des rennes échangent des fourrures à la maison longue de Frostholm et chantent les anciens noms des étoiles.
region-greyspire-name = Pics de Greyspire
region-greyspire-description = Des sommets en lame de couteau au-dessus des nuages. L'Observatoire d'Ilsen, en ruine, suit toujours les comètes ; le col se ferme avec la première neige.
region-mirrorlake-name = Bassin de Mirrorlake
region-mirrorlake-description = Un lac calme et froid au creux d'une cuvette couverte de pins. Les nuits sans vent, il montre un second ciel, et les pêcheurs jurent que ce n'est pas le même.

npc-brenna-hale-description = Brenna Hale est la capitaine du guet de Hearth : le jour au corps de garde de la porte, la nuit dehors à compter les lanternes de la route du Moulin.
npc-oswin-tarrow-description = Oswin Tarrow cultive l'orge autour du moulin de Tarrow aux ailes rouges, au bout nord de la route du Moulin, comme son père et son grand-père avant lui.
npc-maud-feverfew-description = Maud Feverfew tient l'étal le plus animé du marché de Hearth, sous les arcades de la halle aux grains, où elle vend potions, huile de lampe, cordes et rations.
npc-corvin-ashdown-description = Corvin Ashdown est le chasseur qui vit dans une cabane au bord d'un sentier de charbonniers, dans le Thornwood, et qui guide les rares voyageurs ayant une bonne raison de quitter le sentier.
npc-ilse-varrow-description = Ilse Varrow est la savante des comètes ; elle occupe à Hearth une maison étroite encombrée de cartes du ciel, avec une lunette dont elle a taillé elle-même la lentille.
npc-tamsin-reed-description = Tamsin Reed s'occupe des nasses à anguilles et des roselières de l'Île-aux-Joncs, en bordure d'Ashfen, et a planté elle-même les piquets de balisage blancs entre les îles extérieures.
npc-hob-reed-description = Hob Reed a dix-sept ans ; beau-frère de Tamsin Reed, il relève les nasses à anguilles parmi les îles de roseaux d'Ashfen.
npc-garrick-holt-description = Garrick Holt est le sergent qui enseigne le maniement de l'épée dans la cour de la garde, derrière le corps de garde de Hearth, après dix-huit ans passés dans la garde des douanes à Gull's Rest.
npc-sefa-quill-description = Sefa Quill achète et vend hareng, chaux de craie et coquilles de buccin depuis un entrepôt sur le quai de Gull's Rest, et c'est la seule marchande du port à payer l'intégralité des droits.
npc-mother-saffa-name = Mère Saffa
npc-mother-saffa-description = Mère Saffa est la mère de caravane de la Maison de l'Auvent bleu, dont la parole fait loi sur la route des rois, des lacs salés jusqu'à Hearth.
npc-thora-vennick-description = Thora Vennick est la maîtresse de la Salle des Enclumes et tient son étal au marché du Rebord, devant la porte de Cendre, où le Val achète son fer de charrue et ses clous.
npc-sigrun-aernholt-name = Sigrun d'Ærnholt
npc-sigrun-aernholt-description = Sigrun d'Ærnholt est la doyenne du clan d'Ærnholt ; elle garde la clé de la grande porte de la maison longue de Frostholm et prend la parole la première au conseil.
npc-orla-saltash-description = Orla Saltash est la veuve à qui appartiennent quatre harenguiers à Gull's Rest et qui jouit de la sympathie de tous les foyers de la côte.

item-bestiary_volume_1-name = Le Bestiaire du Val, tome premier
item-bestiary_volume_1-description = Par Ilse Varrow, savante de Hearth, et Corvin Ashdown, chasseur : les bêtes que l'on croise à moins de quinze jours de marche de Hearth, des loups du Thornwood au Vieux Brochet. Révèle les faiblesses de chaque créature qu'il décrit.
item-climbing_rope-name = Corde d'escalade (quarante pieds)
item-climbing_rope-description = Du bon chanvre des corderies de Greyspire : les quarante pieds que les bergers recommandent à tout grimpeur qui veut franchir le Couteau. Permet d'escalader les sentiers de falaise et les parois de craie.
item-dye_midnight_blue-name = Teinture bleu nuit
item-dye_midnight_blue-description = Du vrai pastel des marais venu des îles de roseaux d'Ashfen, fixé à la craie de Saltmere et à la coquille de buccin, comme le prépare la guilde des teinturiers de Hearth. Noir à la lueur des lampes, bleu au grand jour. Teint une pièce de tissu ou une armure de cuir.
item-fast_travel_pass-name = Jeton du passeur
item-fast_travel_pass-description = Un jeton d'abbaye en étain, mince et gris à force d'usure, frappé d'un roitelet sur une face et d'une cloche sur l'autre. Les feux-lanternes n'approchent pas d'une main qui en tient un, et les gens des roseaux font encore traverser son porteur une fois.
item-greater_healing_draught-name = Grande potion de soin
item-greater_healing_draught-description = La petite potion, additionnée de peau de salamandre de Cinderfall en poudre et d'une goutte d'eau du Mirrorlake puisée en plein jour, pour ressouder les os. Jamais plus de deux fois par jour. Rend 200 points de vie sur-le-champ.
item-ironbark_shield-name = Bouclier d'écorce de fer
item-ironbark_shield-description = Des plaques d'écorce d'un chêne du Thornwood vieux de cinq cents ans, étuvées et superposées sur du tilleul par les fabricants de boucliers de Hearth. Une épée qui y mord y reste prise. Bloque 30 % de plus qu'un simple bouclier de bois.
item-lantern_oil-name = Flasque d'huile de lampe
item-lantern_oil-description = De l'huile de colza pressée et clarifiée, avec une pincée de piment royal d'Ashfen pour qu'elle brûle d'une flamme égale et douce ; chaque flasque est remplie de la main même de Maud Feverfew. Brûle deux heures de temps de jeu dans n'importe quelle lanterne.
item-legendary_sword-name = Lame de serment naine
item-legendary_sword-description = Une longue lame d'acier sombre forgée dans les salles de Cinderfall pour porter un serment, comme le fut Emberfall, et vendue sans serment au marché du Rebord au prix gravé sur sa plaque de fer. Ne prêtez sur elle aucun serment que vous comptiez rompre.
item-minor_healing_draught-name = Petite potion de soin
item-minor_healing_draught-description = L'achillée, la consoude et la grande camomille de Maud Feverfew, macérées dans de l'eau-de-vie d'orge avec du miel de Tarrow. Pour les coupures, les bleus et les entorses : deux gorgées et du repos. Rend 50 points de vie en l'espace de trois secondes.
item-pack_mule-name = Mule de bât
item-pack_mule-description = Une mule patiente que son ancien propriétaire a baptisée « Biscuit », au pied sûr dans les lacets de Greyspire. Ajoute 40 emplacements de charge.
item-stash_expansion-name = Agrandissement de la réserve
item-stash_expansion-description = Loue un coffre-fort de plus dans les caves sous la halle aux grains de Hearth : 20 emplacements de stockage supplémentaires, pour toujours.
item-storm_cloak-name = Cape d'orage
item-storm_cloak-description = Une lourde laine foulée, cirée et doublée, teinte en bleu nuit en mémoire de la Cape de la Tisseuse d'orages. Elle n'écarte pas la pluie, mais elle réduit de moitié les pénalités de la pluie, du grésil et des embruns.
item-tidecaller_spear-name = Lance d'appeleuse de marées
item-tidecaller_spear-description = Une hampe de frêne trempée un an dans la saumure, sa pointe barbelée forgée dans le clou d'une épave dont quelqu'un a réchappé, équilibrée pour le lancer depuis un pont qui tangue. Qu'elle sente ou non la marée tourner, cela ne regarde que vous et la mer.
item-traveller_rations-name = Rations de voyage
item-traveller_rations-description = Des dattes séchées, du fromage à pâte dure et des biscuits d'orge, emballés à la manière des caravanes pour la route des rois. Tient la faim à distance pendant toute une journée de marche.
item-waystone_shard-name = Éclat de pierre de passage
item-waystone_shard-description = Un éclat d'une pierre de passage tombée, conservé avec l'autorisation des Gardiens. Il vous ramène à la pierre intacte la plus proche et, une seule fois, fait qu'une pierre se souvienne de vous.
