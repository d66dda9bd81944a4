import ssl
import urllib.request


def test_live_server_answers_over_https(live_vouch):
    context = ssl.create_default_context(cafile=str(live_vouch.cert_path))
    with urllib.request.urlopen(f"{live_vouch.url}/livez", context=context, timeout=10) as response:
        assert response.status == 200
        assert response.read() == b"ok"
