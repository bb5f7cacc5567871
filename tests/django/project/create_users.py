# Run by tests/django/setup.sh via `manage.py shell -c`: users whose passwords Django itself hashed,
# one hasher each, plus the edge cases. Prints one JSON object: username -> stored hash prefix.
import datetime
import json

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User

HASHERS = ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "bcrypt", "scrypt", "md5"]


def password_of(username):
    return f"{username}-Tr0ub4dor&3-staple"


def add(username, email="", hasher="default", active=True, staff=False, joined=None):
    user = User(username=username, email=email, is_active=active, is_staff=staff)
    user.password = make_password(password_of(username), hasher=hasher)
    if joined:
        user.date_joined = joined
    user.save()
    return user


User.objects.all().delete()
for h in HASHERS:
    add(f"u_{h}", email=f"{h}@example.com", hasher=h)
add("alice", email="alice@example.com", staff=True,
    joined=datetime.datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc))
add("Carol", email="carol@example.com")
add("inactive", email="inactive@example.com", active=False)
nopass = add("nopass", email="nopass@example.com")
nopass.set_unusable_password()
nopass.save()
add("shared1", email="shared@example.com")
add("shared2", email="Shared@Example.com")
add("admin", email="admin@example.com", staff=True)
add("zoë", email="zoe@example.com")

print(json.dumps({u.username: u.password.split("$")[0] for u in User.objects.order_by("id")}))
