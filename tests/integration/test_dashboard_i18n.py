"""The dashboard speaks Simplified Chinese and English, switched by the language form."""

import pytest
from django.urls import reverse

from tests.dashboard_support import login, staff_user

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_login_page_in_both_languages(client):
    assert "Staff login" in client.get(reverse("login")).content.decode()
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "员工登录" in page


def test_language_switch_changes_the_dashboard(client):
    login(client, staff_user("operator"))
    page = client.get(reverse("dashboard:kiosks")).content.decode()
    assert "Disable face fusion everywhere" in page
    response = client.post(
        reverse("set_language"), {"language": "zh-hans", "next": reverse("dashboard:kiosks")}
    )
    assert response.status_code == 302
    page = client.get(reverse("dashboard:kiosks")).content.decode()
    assert "全部关闭人脸融合" in page
    assert 'lang="zh-hans"' in page
