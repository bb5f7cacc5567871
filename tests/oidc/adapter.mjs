// An in-memory oidc-provider adapter that, unlike the built-in MemoryAdapter, can be listed
// (the admin API's GET /sessions) and revokes by grant id across every model (what the
// admin API's logout does after sending the back-channel logout tokens). Test use only: one
// process, nothing persisted, expired entries dropped on read.

const stores = new Map(); // model name → Map(id → { payload, expiresAt })

function storeFor(model) {
  let store = stores.get(model);
  if (!store) {
    store = new Map();
    stores.set(model, store);
  }
  return store;
}

function live(store, id) {
  const entry = store.get(id);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    store.delete(id);
    return undefined;
  }
  return entry;
}

export class TestAdapter {
  constructor(model) {
    this.model = model;
    this.store = storeFor(model);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    this.store.set(id, { payload: structuredClone(payload), expiresAt });
  }

  async find(id) {
    const entry = live(this.store, id);
    return entry ? structuredClone(entry.payload) : undefined;
  }

  async findByUid(uid) {
    for (const id of [...this.store.keys()]) {
      const entry = live(this.store, id);
      if (entry && entry.payload.uid === uid) return structuredClone(entry.payload);
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const id of [...this.store.keys()]) {
      const entry = live(this.store, id);
      if (entry && entry.payload.userCode === userCode) return structuredClone(entry.payload);
    }
    return undefined;
  }

  async consume(id) {
    const entry = live(this.store, id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    revokeGrantEverywhere(grantId);
  }
}

/** Every stored, unexpired entry of one model: [{ id, payload }]. */
export function listModel(model) {
  const store = storeFor(model);
  const out = [];
  for (const id of [...store.keys()]) {
    const entry = live(store, id);
    if (entry) out.push({ id, payload: structuredClone(entry.payload) });
  }
  return out;
}

/** Drops the grant and every token, code or request issued under it, in every model. */
export function revokeGrantEverywhere(grantId) {
  for (const [model, store] of stores) {
    for (const [id, entry] of store) {
      if (entry.payload.grantId === grantId || (model === 'Grant' && id === grantId)) {
        store.delete(id);
      }
    }
  }
}
