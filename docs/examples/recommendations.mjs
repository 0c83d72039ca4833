// Get recommendations from embedrec (Node.js 18+ or a browser: fetch is built in).
//   EMBEDREC_API_URL=http://127.0.0.1:8000 EMBEDREC_API_KEY=sk_live_... node recommendations.mjs user_0001
const API_URL = process.env.EMBEDREC_API_URL ?? 'http://127.0.0.1:8000';
const API_KEY = process.env.EMBEDREC_API_KEY;

async function getRecommendations(userId, count = 5) {
  const response = await fetch(`${API_URL}/api/v1/recommendations`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user_id: userId, count }),
  });
  if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);
  return response.json();
}

const recommendations = await getRecommendations(process.argv[2] ?? 'user_0001');
for (const item of recommendations.recommendations) {
  console.log(`${item.title}: $${item.price} (score: ${item.score.toFixed(3)}) - ${item.reason}`);
}
