# 日本語 (ja) のメッセージ定義：クエスト、通貨、ワールド状態、システム通知。
# Project Fluent 形式。日本語の複数形カテゴリ (CLDR) は other のみのため、数値による分岐は使用しない。
# メッセージ ID はすべての言語ファイルで共通にすること。

quest-accepted = クエスト「{ $title }」を受注しました。
quest-progress = { $objective }：{ $count }/{ $target }
quest-completed = クエスト「{ $title }」を達成しました！ 報酬：{ CROWNS($currency) }クラウン、経験値 { $xp }
quest-abandoned = クエスト「{ $title }」を破棄しました。
quest-unavailable = このクエストはまだ受注できません。レベル{ $level }に達すると受注可能になります。
currency-amount = { CROWNS($amount) }クラウン
items-received = アイテムを{ $count }個入手しました。
level-up = レベルアップ！ レベル{ $level }になりました。
error-not-enough-gold = クラウンが足りません。価格は{ CROWNS($price) }クラウンですが、所持金は{ CROWNS($balance) }クラウンしかありません。
error-rate-limited = 操作の間隔が短すぎます。{ $seconds }秒後にもう一度お試しください。
error-session-expired = セッションの有効期限が切れました。もう一度ログインしてください。
error-server-busy = サーバーが混み合っています。しばらくしてからもう一度お試しください。
time-of-day = { $period ->
        [dawn] 夜明けです。
        [morning] 朝です。
        [afternoon] 昼下がりです。
        [evening] 夕方です。
       *[night] 夜です。
    }
season-now = { $season ->
        [spring] 春です。
        [summer] 夏です。
        [autumn] 秋です。
       *[winter] 冬です。
    }
game-clock = 現在の時刻は{ $hour }時{ $minute }分です。
weather-now = { $condition ->
        [CONDITION_CLEAR] 空は晴れ渡っています。
        [CONDITION_CLOUDY] 空は曇っています。
        [CONDITION_RAIN] 雨が降っています。
        [CONDITION_STORM] 嵐が吹き荒れています。
        [CONDITION_SNOW] 雪が降っています。
        [CONDITION_FOG] 濃い霧が立ち込めています。
       *[other] 天気が変わりつつあります。
    }
days-until-festival = 収穫月の祭りまで、あと{ $days }日です。
player-joined = { $name }さんがゲームに参加しました。
friends-online = オンラインのフレンド：{ $count }人
