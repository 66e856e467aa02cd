"""The portal's consent texts (purpose ``agent_call``), first versions, and its roles.

Kept here once: the data migration stores these rows; ``ensure_portal_setup`` puts them
back on a flushed test database. A later wording is a new version (a new ``ConsentText``
row), never an edit.
"""

AGENT_CALL = "agent_call"
HOME_KIOSK = "portal-home"  # the kiosk row that stands for customers' own browsers
AGENT = "agent"
SUPERVISOR = "supervisor"
ROLE_PERMISSIONS = {AGENT: ["take_calls"], SUPERVISOR: ["supervise_calls"]}

TEXTS = [
    (
        AGENT_CALL,
        "en",
        "Consent for a video call with a service agent",
        "With your permission, your camera picture and your voice go to our servers while this "
        "call lasts and from there to the service agent who takes your call. The agent sees and "
        "hears you as you are; if you choose \u201cblur my face\u201d, the agent sees your face "
        "blurred (software finds your face to blur it).\n\n"
        "The agent appears to you as our digital human: software turns the agent's face into "
        "the digital human you see, and the picture is marked \u201cAI-generated\u201d. You "
        "hear the agent's own voice.\n\n"
        "Nothing is recorded: we do not store your picture, your voice or the agent's. A "
        "supervisor may watch or listen only when the agent allows it, and that is recorded. We "
        "keep a record that you agreed, when, and which text you read.\n\n"
        "Your microphone and speaker are used only after you agree. You can end the call or "
        "withdraw your consent at any time: the call ends at once.",
    ),
    (
        AGENT_CALL,
        "zh-hans",
        "同意与服务人员进行视频通话",
        "经您同意，通话期间您的摄像头画面和声音会传送至我们的服务器，并转给接听您来电的服务人员。"
        "服务人员会看到和听到您本人；如您选择“模糊我的面部”，服务人员看到的您的面部将被模糊处理"
        "（软件需识别您的面部以进行模糊）。\n\n"
        "服务人员将以我们的数字人形象出现：软件会将服务人员的面部转换为您看到的数字人，画面标注"
        "“AI合成”。您听到的是服务人员本人的声音。\n\n"
        "我们不录制任何内容，不保存您或服务人员的画面和声音。仅在服务人员允许时，主管方可旁观或旁听，"
        "且会被记录。我们会保存您同意的记录、同意时间以及您阅读的文本版本。\n\n"
        "您同意后才会使用麦克风和扬声器。您可随时结束通话或撤回同意，通话将立即结束。",
    ),
]
