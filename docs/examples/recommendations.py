"""Get recommendations from embedrec (Python, standard library only).

EMBEDREC_API_URL=http://127.0.0.1:8000 EMBEDREC_API_KEY=sk_live_... python recommendations.py user_0001
"""

import json
import os
import sys
import urllib.request

API_URL = os.environ.get("EMBEDREC_API_URL", "http://127.0.0.1:8000")
API_KEY = os.environ["EMBEDREC_API_KEY"]


def get_recommendations(user_id: str, count: int = 5) -> dict:
    request = urllib.request.Request(
        f"{API_URL}/api/v1/recommendations",
        data=json.dumps({"user_id": user_id, "count": count}).encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def track(user_id: str, item_id: str, interaction_type: str, recommendation_id: str) -> dict:
    event = {
        "user_id": user_id,
        "item_id": item_id,
        "interaction_type": interaction_type,
        "context": {"source": "recommendations", "recommendation_id": recommendation_id},
    }
    request = urllib.request.Request(
        f"{API_URL}/api/v1/interactions",
        data=json.dumps(event).encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


if __name__ == "__main__":
    result = get_recommendations(sys.argv[1] if len(sys.argv) > 1 else "user_0001")
    for item in result["recommendations"]:
        print(f"{item['title']}: ${item['price']} (score: {item['score']:.3f}) - {item['reason']}")  # noqa: T201
    first = result["recommendations"][0]
    report = track("user_0001", first["item_id"], "click", result["metadata"]["recommendation_id"])
    print("tracked click:", report["status"])  # noqa: T201
