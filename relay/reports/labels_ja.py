"""Japanese names for the codes the relay stores, for everything ward staff read: the console
and the reports. (The database, the API and CSV/JSON exports keep the codes.)"""

from __future__ import annotations

STATUS = {"Actual": "実際の警報", "Exercise": "訓練", "Test": "テスト"}
ALERT_STATE = {
    "draft": "下書き",
    "dispatching": "送信準備中",
    "active": "送信・応答受付中",
    "closed": "終了",
    "cancelled": "取消済み",
}
MSG_TYPE = {"Alert": "発令", "Update": "更新", "Cancel": "取消"}
CHANNEL = {"sms": "SMS", "voice": "音声電話", "email": "メール"}
COUNT = {
    "planned": "計画",
    "pending": "送信待ち",
    "sent": "送信済み",
    "delivered": "配信確認",
    "reached": "本人に到達",
    "failed": "不達",
}
MODE = {"cascade": "段階送信（未応答なら電話・次の連絡先へ）", "blast": "一斉送信"}
ROLE = {"viewer": "閲覧者", "operator": "操作員", "coordinator": "訓練担当", "admin": "管理者"}
LANGUAGE = {"ja": "日本語", "en": "英語", "ja-easy": "やさしい日本語"}
KIND = {
    "ward_office": "区役所",
    "federation": "地区連合町内会",
    "association": "自治会町内会",
    "disaster_base": "地域防災拠点",
    "care_plaza": "地域ケアプラザ",
    "facility": "施設",
    "shelter": "避難所",
    "hospital": "災害拠点病院",
}
RUN_STATE = {
    "pending": "開始待ち",
    "running": "実施中",
    "done": "完了",
    "missed": "未実施（停止中）",
    "failed": "失敗",
}
ACK_METHOD = {
    "sms_reply": "SMS返信",
    "voice_key": "電話のボタン",
    "voice_speech": "電話の音声（はい等）",
    "link": "リンク",
    "manual": "手動（職員）",
}
DELIVERY_STATE = {
    "planned": "予定",
    "queued": "送信待ち",
    "sending": "送信中",
    "unknown": "結果不明",
    "accepted": "受付済み",
    "sent": "送信済み",
    "delivered": "配信確認",
    "answered": "応答",
    "completed": "通話完了",
    "cancelled": "取消",
    "failed": "失敗",
    "undelivered": "不達",
    "no_answer": "応答なし",
    "busy": "話し中",
    "machine": "留守番電話",
    "bounced": "不達（メール）",
}


def attempt(text: str) -> str:
    """'会長 voice:machine' (reports' record of a try) -> '会長 音声電話:留守番電話'."""
    who, _, what = text.rpartition(" ")
    channel, _, state = what.partition(":")
    named = f"{CHANNEL.get(channel, channel)}:{DELIVERY_STATE.get(state, state)}"
    return f"{who} {named}" if who else named
