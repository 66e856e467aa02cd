"""The first version of each consent text, in Simplified Chinese and English."""

import hashlib

from django.db import migrations

TEXTS = [
    (
        "face_processing",
        "en",
        "Consent to process your face",
        "With your permission, this kiosk sends the video from its camera to our servers while "
        "this session lasts. There, software finds your face and follows its movements and "
        "expressions to animate a digital human that you see on this screen. The video shown "
        "to you is marked \u201cAI-generated\u201d.\n\n"
        "We do not record or store your video, your face or any measurement of it. We keep a "
        "record that you agreed, when, and which text you read, as the law requires.\n\n"
        "You can withdraw at any time with the Stop button or by leaving: processing ends at "
        "once. You can also continue without the digital human; the service is the same.",
    ),
    (
        "face_processing",
        "zh-hans",
        "同意处理您的面部影像",
        "经您同意，本次服务期间，本终端会将摄像头画面传送至我们的服务器。服务器上的软件会识别您的面部，"
        "并跟随其动作和表情驱动您在屏幕上看到的数字人。向您展示的画面均标注“AI合成”。\n\n"
        "我们不会录制或保存您的视频、面部影像或任何面部测量数据。我们会依法保存您同意的记录、"
        "同意时间以及您阅读的文本版本。\n\n"
        "您可随时点击“停止”或直接离开以撤回同意，处理将立即停止。您也可以选择不使用数字人继续办理，"
        "服务内容相同。",
    ),
    (
        "presenter_face",
        "en",
        "A presenter's face is shown",
        "The digital human may show the face of a presenter who has agreed to appear. Their "
        "face follows your expressions. The video is marked \u201cAI-generated\u201d.",
    ),
    (
        "presenter_face",
        "zh-hans",
        "展示主持人面部",
        "数字人可能展示已同意出镜的主持人的面部，其表情跟随您的表情变化。画面均标注“AI合成”。",
    ),
]


def create_texts(apps, schema_editor):
    ConsentText = apps.get_model("consent", "ConsentText")
    for purpose, language, title, body in TEXTS:
        ConsentText.objects.get_or_create(
            purpose=purpose,
            language=language,
            version=1,
            defaults={
                "title": title,
                "body": body,
                "sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(),
            },
        )


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]
    operations = [migrations.RunPython(create_texts, migrations.RunPython.noop)]
