# =============================================================================
# INHALTSTEXTE AUF DEUTSCH (de) — Referenz für Übersetzer
# =============================================================================
# status: complete
#
# What players read of the content, in German. English is the source and stays in the content
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
# Anrede: du. Namen: Personen- und Ortsnamen bleiben (Hearth, Gull's Rest, Ashfen, Ilsen,
# Ærnholt); beschreibende Teile werden übersetzt, überall gleich:
#   Saltmere-Küste, Hearthvale, Dunmar-Weite, Ashfen-Sümpfe, Thornwood, Cinderfall-Caldera,
#   Frostholm-Mark, Greyspire-Gipfel, Mirrorlake-Becken; das Tal (the Vale), Mühlweg (Mill
#   Road), der Hohle Hof (Hollow Court), Dornenmal (briar mark), Salzsilber, Nachtboote,
#   Laternenlichter (lantern-lights), Sankt Wren, die Bleiche Laterne (Pale Lantern), der
#   Durstige (Thirsty One), Blaues Sonnensegel (Blue Awning), Halle der Ambosse, Randvolk,
#   Randmarkt, Aschtor, Kornbörse, Ølskær der Laternenstreuner, Langnacht, Langhaus.

quest-lanterns-on-the-mill-road-title = Laternen am Mühlweg
quest-lanterns-on-the-mill-road-description = Seit drei Nächten sind die Laternen am Mühlweg dunkel, und die Gerstenfuhrleute weigern sich, ihn nach Sonnenuntergang zu befahren. Brenna Hale will jede einzelne wieder brennen sehen, vom Nordtor von Hearth bis zur Tarrow-Windmühle, und sie will wissen, wer sie immer wieder löscht.
quest-lanterns-on-the-mill-road-objective-light-lanterns = Entzünde die Laternen am Mühlweg neu
quest-lanterns-on-the-mill-road-objective-collect-cut-wicks = Sammle die abgeschnittenen Dochte am Fuß der Laternenpfähle ein

quest-drill-in-the-guard-yard-title = Drill im Wachhof
quest-drill-in-the-guard-yard-description = Die Dochte wurden nicht ausgeblasen, sondern abgeschnitten, und zwar mit etwas, das einen Dorn im Geflecht zurückließ. Garrick Holt will, dass jeder, der nachts auf dem Mühlweg unterwegs ist, weiß, wo bei einem Schwert vorne ist: Übe an den Strohpuppen im Wachhof von Hearth und halte dann seinen Rekruten stand.
quest-drill-in-the-guard-yard-objective-strike-the-pells = Triff die Strohpuppen im Wachhof mit sauberen Schlägen
quest-drill-in-the-guard-yard-objective-spar-with-recruits = Gewinne Übungskämpfe gegen Garricks Rekruten

quest-sheaves-gone-missing-title = Verschwundene Garben
quest-sheaves-gone-missing-description = Jemand schneidet bei Mondschein Oswin Tarrows Gerste und trägt die Garben den Hang hinauf; die Stoppeln lässt er zu kleinen Dornenknoten gebunden zurück. Geh seine Felder ab, finde die Stelle, an der die Diebe durch die Hecke kommen, und folge ihrer Spur zum Rand des Thornwood.
quest-sheaves-gone-missing-objective-find-briar-knots = Finde die Dornenknoten in den Stoppeln von Tarrows Feldern
quest-sheaves-gone-missing-objective-follow-the-trail = Folge der Spur der Diebe bis zum Rand des Thornwood

quest-the-briar-mark-title = Das Dornenmal
quest-the-briar-mark-description = Die Spur endet an der alten Zehntscheune, wo das Tal in den Thornwood übergeht, und in jedes Tor ist das Dornenmal der Diener des Hohlen Hofes geritzt. Brenna will die Plünderer vertrieben, das Korn heimgebracht und das Mal aus dem Holz gebrannt sehen, bevor es Wurzeln schlägt.
quest-the-briar-mark-objective-drive-off-raiders = Vertreibe die vom Dornenmal gezeichneten Plünderer aus der Zehntscheune
quest-the-briar-mark-objective-recover-grain = Bring die gestohlenen Garben zurück zu den Karren der Tarrows
quest-the-briar-mark-objective-burn-the-mark = Brenne das Dornenmal aus den Toren der Zehntscheune

quest-herring-and-hearsay-title = Hering und Hörensagen
quest-herring-and-hearsay-description = Sefa Quill kauft in Gull's Rest Salzhering fassweise, und seit Kurzem kommen ihre Fässer ein wenig zu schwer an und riechen nach etwas anderem als Fisch. Hör dich am Kai um und brich dann ein paar Fässer auf, bevor die Fuhrleute sie ins Landesinnere bringen.
quest-herring-and-hearsay-objective-ask-the-fishwives = Frag die Fischerfrauen am Kai von Gull's Rest nach den Nachtbooten
quest-herring-and-hearsay-objective-inspect-barrels = Brich die Heringsfässer in Sefas Lagerhaus auf

quest-signals-on-the-chalk-title = Signale über der Kreide
quest-signals-on-the-chalk-description = Unter dem Hering lagen in Ölzeug gewickelte Bündel mit Salzsilber aus Dunmar, unverzollt und in keinem Buch verzeichnet. Sefa will wissen, wer es anlandet: Halte Wache auf den Kreideklippen über Gull's Rest und notiere die Laternensignale, die die Nachtboote zum Ufer hinüberblinken.
quest-signals-on-the-chalk-objective-keep-cliff-watch = Halte bis zum Morgengrauen Wache am Klippenpfad über Gull's Rest
quest-signals-on-the-chalk-objective-copy-the-signals = Notiere die Laternensignale, die von den Nachtbooten blinken

quest-into-the-tide-caves-title = In die Gezeitenhöhlen
quest-into-the-tide-caves-description = Corvin Ashdown jagt seit seiner Kindheit Robben unter diesen Klippen, und er deutet die Signale als Wegbeschreibung zu den Gezeitenhöhlen unter Gull's Rest. Steig bei Ebbe hinab, durchsuche die Höhlen nach dem Lager der Schmuggler und sei wieder draußen, bevor das Meer zurückkommt.
quest-into-the-tide-caves-objective-descend-the-cliff = Klettere bei Niedrigwasser die Kreidewand hinab zu den Höhleneingängen
quest-into-the-tide-caves-objective-search-the-caves = Durchsuche die Gezeitenhöhlen nach versteckter Ladung
quest-into-the-tide-caves-objective-beat-the-tide = Verlasse die Höhlen, bevor die Flut sie verschließt

quest-the-tidecallers-bargain-title = Der Handel der Gezeitenruferin
quest-the-tidecallers-bargain-description = In den Höhlen lag genug Salzsilber, um ein ganzes Dorf zu kaufen, jedes Bündel mit der Möwe von Orla Saltash gestempelt, die die Nachtboote anführt und von der man sagt, sie rufe die Flut, wenn sie sie braucht. Garrick Holt ist mit den Zöllnern aus Hearth heruntergeritten; stell dich bei Neumond ihrer Mannschaft am Kiesstrand und bring ihr Frachtbuch zurück.
quest-the-tidecallers-bargain-objective-defeat-the-crew = Besiege Orla Saltashs Mannschaft am Kiesstrand unter Gull's Rest
quest-the-tidecallers-bargain-objective-seize-the-ledger = Nimm Orlas Frachtbuch an dich, bevor es über Bord geht

quest-reeds-for-the-thatch-title = Schilf für die Dächer
quest-reeds-for-the-thatch-description = Tamsin Reed betreut die Aalreusen und Schilffelder auf den Inseln am Rand von Ashfen, und der Herbstschnitt ist spät dran. Hilf ihr, Schilf für die Dachdecker von Hearth zu bündeln, und schlag Markierungspfähle entlang des festen Bodens ein, damit sich jeder, der nach der Dämmerung heimgeht, an etwas anderes halten kann als an die Lichter.
quest-reeds-for-the-thatch-objective-cut-reed = Schneide und bündle Schilf auf den Schilffeldern der Inseln
quest-reeds-for-the-thatch-objective-drive-stakes = Schlag Markierungspfähle entlang des festen Pfads zwischen den Inseln ein

quest-do-not-follow-the-lights-title = Folge nicht den Lichtern
quest-do-not-follow-the-lights-description = Tamsins Schwager Hob ging in der Dämmerung hinaus, um nach den Aalreusen zu sehen, und kam nie zurück; seine Laterne trieb noch brennend auf dem schwarzen Wasser, als man sie fand. Folge den Markierungspfählen in den Sumpf, finde Hob, bevor die Laternenlichter ihn noch tiefer hineinlocken, und bring ihn nach Hause.
quest-do-not-follow-the-lights-objective-find-hobs-traps = Finde Hobs Aalreusen zwischen den Schilfinseln
quest-do-not-follow-the-lights-objective-find-hob = Finde Hob Reed irgendwo draußen im Sumpf
quest-do-not-follow-the-lights-objective-lead-hob-home = Führe Hob an den Markierungspfählen entlang zurück, ohne den Lichtern nachzulaufen

quest-the-bell-of-saint-wren-title = Die Glocke von Sankt Wren
quest-the-bell-of-saint-wren-description = Hob schwört, die Lichter hätten die Stundengebete der Abtei gesungen. Maud Feverfew, deren Großmutter den letzten Mönchen von Sankt Wren Lampenöl verkaufte, sagt, die Abteiglocke habe die Sumpflichter einst ferngehalten. Wate hinaus zur versunkenen Abtei, zerstreue die Lichter, die sich in ihrem Kirchenschiff sammeln, und läute die Glocke wieder.
quest-the-bell-of-saint-wren-objective-reach-the-abbey = Wate hinaus zur versunkenen Abtei von Sankt Wren
quest-the-bell-of-saint-wren-objective-scatter-the-lights = Zerstreue die Laternenlichter im gefluteten Kirchenschiff
quest-the-bell-of-saint-wren-objective-ring-the-bell = Läute die Abteiglocke im halb versunkenen Turm

quest-before-the-first-snow-title = Vor dem ersten Schnee
quest-before-the-first-snow-description = Seit elf Jahren wartet Ilse Varrow auf jemanden, der bereit ist, sie zum Observatorium von Ilsen hinaufzubringen, und der Pass schließt sich mit dem ersten Schnee. Führe sie über den messerscharfen Gratpfad oberhalb der Wolkengrenze und errichte unterwegs Steinmänner, damit die Maultiere mit dem Nachschub folgen können.
quest-before-the-first-snow-objective-build-cairns = Errichte Steinmänner als Wegzeichen am Greyspire-Pass
quest-before-the-first-snow-objective-reach-the-observatory = Bring Ilse Varrow sicher bis zum Tor des Observatoriums

quest-the-broken-orrery-title = Die zerbrochene Planetenmaschine
quest-the-broken-orrery-description = Die große Planetenmaschine unter der Kuppel des Observatoriums wurde ihres Messings beraubt, und die Zahnräder glitzern in den Nestern der Klippenharpyien unterhalb der Mauern. Ilse braucht jedes Rad zurück und dazu die geschliffene Linse aus dem Gipfelversteck, bevor der Komet aufgeht.
quest-the-broken-orrery-objective-recover-gears = Hol die Messingzahnräder der Planetenmaschine aus den Nestern der Klippenharpyien
quest-the-broken-orrery-objective-fetch-the-lens = Hol die geschliffene Linse aus dem Gipfelversteck

quest-the-pale-lantern-returns-title = Die Bleiche Laterne kehrt zurück
quest-the-pale-lantern-returns-description = Nur alle einundsechzig Jahre zieht der Komet, den die alten Sternkundigen die Bleiche Laterne nannten, über den Himmel von Greyspire, und heute Nacht ist es so weit. Verteidige die Kuppel gegen den Sturm, der mit ihm heranzieht, richte die Spiegel aus und hilf Ilse, seine Bahn aufzuzeichnen, zum ersten Mal seit dem Fall des Observatoriums.
quest-the-pale-lantern-returns-objective-hold-the-dome = Treib die Sturmgeister von der Kuppel des Observatoriums zurück
quest-the-pale-lantern-returns-objective-align-the-mirrors = Richte die Kuppelspiegel nach dem Kometen aus
quest-the-pale-lantern-returns-objective-record-the-path = Hilf Ilse Varrow, die Bahn des Kometen über den Himmel aufzuzeichnen

quest-fen-fire-in-the-briar-title = Sumpffeuer im Dornengestrüpp
quest-fen-fire-in-the-briar-description = Corvin Ashdown hat tief im Thornwood Laternenlichter gefunden, in Dornenranken gefangen: dasselbe bleiche Feuer, das Ashfen heimsucht, aufgereiht an einem Pfad, den kein Köhler je geschlagen hat. Der Hohle Hof sammelt die Lichter des Sumpfes zu irgendeinem Zweck; folge den gefangenen Laternen bis an ihr Ende und zerbrich jeden Käfig auf deinem Weg.
quest-fen-fire-in-the-briar-objective-break-the-cages = Zerbrich die Dornenkäfige, in denen Sumpflichter gefangen sind
quest-fen-fire-in-the-briar-objective-follow-the-caged-path = Folge dem Pfad der gefangenen Laternen ins Herz des Waldes
quest-fen-fire-in-the-briar-objective-defeat-the-briar-warden = Besiege den Dornenwächter des Hohlen Hofes

quest-a-second-sky-title = Ein zweiter Himmel
quest-a-second-sky-description = Orla Saltashs Frachtbuch verzeichnet Ladungen, die über den Mirrorlake gerudert wurden; die gefangenen Lichter des Hohlen Hofes waren für dasselbe Ufer bestimmt; und Ilses Karte zeigt die Bleiche Laterne als Spiegelbild im See, in einer Nacht, in der sie nirgends am wirklichen Himmel stand. Rudere in der nächsten windstillen Nacht auf das stille Wasser hinaus und finde heraus, wessen Himmel das ist.
quest-a-second-sky-objective-question-the-fishers = Frag die Fischer am Mirrorlake, was sie im zweiten Himmel gesehen haben
quest-a-second-sky-objective-row-out = Rudere in einer windstillen Nacht zur Mitte des Sees hinaus
quest-a-second-sky-objective-close-the-reflection = Schließe die Spiegelung, bevor der Komet des zweiten Himmels hindurchkommt

quest-sand-that-sings-title = Singender Sand
quest-sand-that-sings-description = Die Dünen haben den Durstigen zugeweht, und seit der Koloss begraben liegt, jagen die Glaslindwürmer an seinem Brunnen. Mutter Saffa vom Blauen Sonnensegel bringt ihr Salz erst nach Norden, wenn die Straße sicher ist: Lock die Würmer mit Krügen voller Steine fort, grab den Kopf des Steinkönigs frei und führe ihre Karawane an seinem Brunnen vorbei.
quest-sand-that-sings-objective-throw-the-jars = Wirf Reihen von Krügen voller Steine aus, um die jagenden Würmer von der Straße fortzulocken
quest-sand-that-sings-objective-uncover-the-thirsty-one = Grab den gekrönten Kopf des Durstigen aus dem Sand
quest-sand-that-sings-objective-bring-the-caravan-through = Führe die Karawane des Blauen Sonnensegels sicher am Brunnen des Durstigen vorbei

quest-the-salamanders-glow-white-title = Die Salamander glühen weiß
quest-the-salamanders-glow-white-description = Die Salamander in der Grube der Halle der Ambosse glühen weiß, ohne dass ein Feuer unter ihnen brennt, und das Randvolk zählt die Jahre, seit der Berg im Jahr 318 zuletzt geatmet hat. Thora Vennick will, dass jemand die tiefen Schlote liest, bevor die Hallen entscheiden, ob sie ihre Feuer dämpfen, und dass die Hütten des Randvolks vor den Nestern bewahrt werden, die von selbst zu brennen begonnen haben.
quest-the-salamanders-glow-white-objective-read-the-deep-vents = Setze einen Salamander aus seinem Kasten auf jeden der tiefen Schlote und lies die Farbe seines Glühens
quest-the-salamanders-glow-white-objective-put-out-the-nests = Ersticke die glühenden Salamandernester, bevor sie die Hütten des Randvolks in Brand setzen
quest-the-salamanders-glow-white-objective-report-to-thora = Berichte Thora Vennick, was die Salamander an den Schloten gezeigt haben

quest-the-strays-verse-title = Der Vers des Streuners
quest-the-strays-verse-description = Der Hirte, der den Vers von Ølskær, dem Laternenstreuner, sang, ist auf der Herbstwanderung gestorben, und niemand sonst kennt ihn ganz. Sigrun von Ærnholt fürchtet, der Stern könnte erlöschen, wenn er in der Langnacht fehlt: Sammle, was jeder Hirte noch weiß, und halte die Nachtwache am Geweihstein, wo der Streuner aufgehen soll.
quest-the-strays-verse-objective-gather-the-verse = Hör dir an, was jeder Rentierhirte vom Vers des Laternenstreuners noch weiß
quest-the-strays-verse-objective-watch-at-the-stone = Halte die Nachtwache am Geweihstein
quest-the-strays-verse-objective-sing-it-back = Sing Sigrun von Ærnholt im Langhaus den ganzen Vers vor

region-saltmere-name = Saltmere-Küste
region-saltmere-description = Kreideklippen und Heringsdörfer, wo das Tal auf die graue See trifft. Schmuggler nutzen die Gezeitenhöhlen unter Gull's Rest.
region-hearthvale-name = Hearthvale
region-hearthvale-description = Gerstenfelder, Windmühlen und die Marktstadt Hearth, wo jede Straße des Tals beginnt. Der sicherste Ort, um den Schwertkampf zu lernen.
region-dunmar-name = Dunmar-Weite
region-dunmar-description = Rote Dünen, durchzogen von den Salzkarawanen. Halb begrabene Kolosse säumen die alte Königsstraße; Wasser ist hier mehr wert als Silber.
region-ashfen-name = Ashfen-Sümpfe
region-ashfen-description = Schwarzes Wasser, Schilfinseln und die versunkene Abtei von Sankt Wren. Nachts treiben Laternenlichter über den Sumpf; folge ihnen nicht.
region-thornwood-name = Thornwood
region-thornwood-description = Eichen, älter als das Königreich, von Dornenranken umschlungen. Die Köhler bleiben auf den Pfaden; die Wölfe und der Hohle Hof nicht.
region-cinderfall-name = Cinderfall-Caldera
region-cinderfall-description = Ein lebendiger Krater, umringt von Obsidian. Zwergische Schmiedehallen zapfen seine Hitze an, und der Boden fühlt sich selbst im Winter warm an.
region-frostholm-name = Frostholm-Mark
region-frostholm-description = Windgepeitschte Steppe unter einer bleichen Sonne. Rentierclans tauschen Felle im Langhaus von Frostholm und singen die alten Namen der Sterne.
region-greyspire-name = Greyspire-Gipfel
region-greyspire-description = Messerscharfe Grate über der Wolkengrenze. Das verfallene Observatorium von Ilsen verfolgt noch immer die Kometen; der Pass schließt sich mit dem ersten Schnee.
region-mirrorlake-name = Mirrorlake-Becken
region-mirrorlake-description = Ein stiller, kalter See in einer von Kiefern gesäumten Senke. In windstillen Nächten zeigt er einen zweiten Himmel, und die Fischer schwören, es sei nicht derselbe.

npc-brenna-hale-description = Brenna Hale ist die Hauptfrau der Wache von Hearth: tagsüber im Torhaus, nachts draußen, wo sie die Laternen am Mühlweg zählt.
npc-oswin-tarrow-description = Oswin Tarrow baut wie schon sein Vater und Großvater Gerste rund um die Tarrow-Mühle mit den roten Flügeln am Nordende des Mühlwegs an.
npc-maud-feverfew-description = Maud Feverfew führt den belebtesten Stand auf dem Markt von Hearth, unter den Bögen der Kornbörse, und verkauft Heiltränke, Lampenöl, Seile und Proviant.
npc-corvin-ashdown-description = Corvin Ashdown ist der Jäger, der in einer Hütte an einem Köhlerpfad im Thornwood lebt und die wenigen Reisenden führt, die gute Gründe haben, den Pfad zu verlassen.
npc-ilse-varrow-description = Ilse Varrow ist die Gelehrte der Kometen und bewohnt in Hearth ein schmales Haus voller Sternkarten, mit einem Fernrohr, dessen Linse sie selbst geschliffen hat.
npc-tamsin-reed-description = Tamsin Reed betreut die Aalreusen und Schilffelder der Insel Île-aux-Joncs am Rand von Ashfen und hat die weißen Markierungspfähle zwischen den äußeren Inseln selbst eingeschlagen.
npc-hob-reed-description = Hob Reed ist siebzehn, Tamsin Reeds Schwager, und sieht nach den Aalreusen zwischen den Schilfinseln von Ashfen.
npc-garrick-holt-description = Garrick Holt ist der Feldwebel, der im Wachhof hinter dem Torhaus von Hearth den Schwertkampf lehrt; zuvor diente er achtzehn Jahre bei der Zollwache in Gull's Rest.
npc-sefa-quill-description = Sefa Quill handelt von einem Lagerhaus am Kai von Gull's Rest aus mit Hering, Kreidekalk und Wellhornschalen und ist dort die einzige Händlerin, die den vollen Zoll zahlt.
npc-mother-saffa-name = Mutter Saffa
npc-mother-saffa-description = Mutter Saffa ist die Karawanenmutter des Hauses vom Blauen Sonnensegel, deren Wort auf der Königsstraße von den Salzseen bis nach Hearth Gesetz ist.
npc-thora-vennick-description = Thora Vennick ist die Meisterin der Halle der Ambosse und hält deren Stand auf dem Randmarkt vor dem Aschtor, wo das Tal sein Pflugeisen und seine Nägel kauft.
npc-sigrun-aernholt-name = Sigrun von Ærnholt
npc-sigrun-aernholt-description = Sigrun von Ærnholt ist die älteste Frau des Ærnholt-Clans; sie verwahrt den Schlüssel zum großen Tor des Langhauses von Frostholm und spricht im Rat als Erste.
npc-orla-saltash-description = Orla Saltash ist die Witwe, der in Gull's Rest vier Heringsboote gehören und die das Wohlwollen jedes Haushalts an der Küste genießt.

item-bestiary_volume_1-name = Das Bestiarium des Tals, Erster Band
item-bestiary_volume_1-description = Von Ilse Varrow, der Gelehrten aus Hearth, und Corvin Ashdown, dem Jäger: die Tiere im Umkreis von vierzehn Tagesreisen um Hearth, von den Wölfen des Thornwood bis zum Alten Hecht. Enthüllt die Schwächen jedes Wesens, das darin beschrieben wird.
item-climbing_rope-name = Kletterseil (vierzig Fuß)
item-climbing_rope-description = Guter Hanf aus den Seilereien von Greyspire: die vierzig Fuß, die die Hirten jedem ans Herz legen, der über das Messer will. Damit erklimmst du Klippenpfade und Kreidewände.
item-dye_midnight_blue-name = Mitternachtsblauer Farbstoff
item-dye_midnight_blue-description = Echter Sumpfwaid von den Schilfinseln in Ashfen, mit Kreide aus Saltmere und Wellhornschalen fixiert, wie die Färberzunft von Hearth ihn ansetzt. Im Lampenlicht schwarz, bei Tag blau. Färbt ein Stück Stoff oder eine Lederrüstung.
item-fast_travel_pass-name = Fährmannsmarke
item-fast_travel_pass-description = Eine Abteimarke aus Zinn, dünn und grau abgegriffen, auf der einen Seite mit einem Zaunkönig geprägt, auf der anderen mit einer Glocke. Die Laternenlichter meiden jede Hand, die eine hält, und das Schilfvolk rudert ihren Träger noch immer einmal hinüber.
item-greater_healing_draught-name = Großer Heiltrank
item-greater_healing_draught-description = Der kleine Heiltrank, dazu gemahlene Salamanderhaut aus Cinderfall und ein Tropfen bei Tageslicht geschöpften Mirrorlake-Wassers, damit Knochen zusammenwachsen. Nie öfter als zweimal am Tag. Stellt sofort 200 Lebenspunkte wieder her.
item-ironbark_shield-name = Eisenrindenschild
item-ironbark_shield-description = Rindenplatten einer fünfhundertjährigen Eiche aus dem Thornwood, von den Schildmachern aus Hearth gedämpft und auf Lindenholz geschichtet. Ein Schwert, das sich darin verbeißt, bleibt stecken. Blockt 30 % mehr als ein einfacher Holzschild.
item-lantern_oil-name = Flasche Lampenöl
item-lantern_oil-description = Gepresstes, geklärtes Rapsöl mit einer Prise Gagelstrauch aus Ashfen, damit es ruhig brennt und süß duftet; jede Flasche hat Maud Feverfew eigenhändig abgefüllt. Brennt in jeder Laterne zwei Stunden Spielzeit lang.
item-legendary_sword-name = Zwergische Eidklinge
item-legendary_sword-description = Eine lange Klinge aus dunklem Stahl, in den Hallen von Cinderfall geschmiedet, um einen Eid zu tragen, wie einst Emberfall, und noch ohne Eid auf dem Randmarkt verkauft, zu dem Preis, der auf ihrer Eisentafel steht. Schwöre nichts darauf, was du zu brechen gedenkst.
item-minor_healing_draught-name = Kleiner Heiltrank
item-minor_healing_draught-description = Maud Feverfews Schafgarbe, Beinwell und Mutterkraut, in Gerstenbrand mit Tarrow-Honig angesetzt. Für Schnitte, Prellungen und Verstauchungen: zwei Schlucke und Ruhe. Stellt im Lauf von drei Sekunden 50 Lebenspunkte wieder her.
item-pack_mule-name = Packmaultier
item-pack_mule-description = Ein geduldiges Maultier, das sein Vorbesitzer auf den Namen „Keks“ getauft hat, trittsicher auf den Serpentinen von Greyspire. Erhöht die Tragkraft um 40 Plätze.
item-stash_expansion-name = Lagererweiterung
item-stash_expansion-description = Mietet eine weitere Truhe in den Kellern unter der Kornbörse von Hearth: 20 zusätzliche Lagerplätze, für immer.
item-storm_cloak-name = Sturmmantel
item-storm_cloak-description = Schwere, gewalkte Wolle, gewachst und gefüttert, mitternachtsblau gefärbt zur Erinnerung an den Mantel der Sturmweberin. Er teilt den Regen nicht, halbiert aber die Nachteile durch Regen, Graupel und Gischt.
item-tidecaller_spear-name = Gezeitenruferspeer
item-tidecaller_spear-description = Ein Eschenschaft, ein Jahr lang in Salzlake getränkt, die Widerhakenspitze aus dem Nagel eines Wracks geschmiedet, das jemand überlebt hat, ausgewogen für den Wurf von einem schwankenden Deck. Ob er den Gezeitenwechsel spürt, bleibt eine Sache zwischen dir und dem Meer.
item-traveller_rations-name = Reiseproviant
item-traveller_rations-description = Getrocknete Datteln, harter Käse und Gerstenzwieback, nach Karawanenart für die Königsstraße verpackt. Hält den Hunger einen ganzen Tagesmarsch lang fern.
item-waystone_shard-name = Wegsteinsplitter
item-waystone_shard-description = Ein Splitter eines umgestürzten Wegsteins, mit Erlaubnis der Wächter verwahrt. Er führt dich zum nächsten unversehrten Stein zurück und sorgt ein einziges Mal dafür, dass sich ein Stein an dich erinnert.
