// Tile grid: one tile per call participant (you included) showing video or an avatar, the
// name, microphone state and a voice-level bar. The SDK renders each video into the tile's
// `.view` element, found by id `view-<userID>` (userIDs are valid id characters).
//
// State lives in data attributes (`data-audio`, `data-video`, `data-joined`), which both the
// CSS and the end-to-end test read, so what is styled is what is tested.

const MIC_ON = '<svg class="icon-on" viewBox="0 0 24 24"><path d="M12 14a3 3 0 003-3V5a3 3 0 10-6 0v6a3 3 0 003 3zm5-3a5 5 0 01-10 0H5a7 7 0 006 6.9V21h2v-3.1A7 7 0 0019 11z"/></svg>';
const MIC_OFF = '<svg class="icon-off" viewBox="0 0 24 24"><path d="M19 11h-2a5 5 0 01-.4 2l1.5 1.5A7 7 0 0019 11zm-4 .2V5a3 3 0 00-5.9-.7zM4.3 3L3 4.3l6 6V11a3 3 0 004.4 2.6l1.6 1.7A5 5 0 017 11H5a7 7 0 006 6.9V21h2v-3.1a7 7 0 003.3-1.3l3.4 3.4 1.3-1.3z"/></svg>';

/** A stable hue per name, so each person keeps the same avatar colour in every tab. */
export function hueFor(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

/** Fills an avatar element with the name's initial and colour. */
export function paintAvatar(el, name) {
  el.textContent = (name || '?').slice(0, 1);
  el.style.setProperty('--hue', String(hueFor(name || '?')));
}

export function viewId(userID) {
  return `view-${userID}`;
}

export class TileGrid {
  constructor(container) {
    this.container = container;
    this.tiles = new Map();
  }

  /** The tile for `userID`, created if missing. `local` marks your own tile. */
  ensure(userID, { local = false, joined = true, video = false, audio = true } = {}) {
    let tile = this.tiles.get(userID);
    if (tile) return tile;
    tile = document.createElement('div');
    tile.className = local ? 'tile local' : 'tile';
    tile.id = `tile-${userID}`;
    tile.dataset.testid = local ? 'tile-local' : 'tile';
    tile.dataset.user = userID;
    tile.dataset.joined = String(joined);
    tile.dataset.audio = audio ? 'on' : 'off';
    tile.dataset.video = video ? 'on' : 'off';

    const view = document.createElement('div');
    view.className = 'view';
    view.id = viewId(userID);
    view.dataset.testid = 'tile-view';

    const avatar = document.createElement('span');
    avatar.className = 'avatar';
    paintAvatar(avatar, userID);

    const state = document.createElement('span');
    state.className = 'state';
    state.dataset.testid = 'tile-state';
    state.textContent = 'Ringing…';

    const badge = document.createElement('div');
    badge.className = 'badge';
    const mic = document.createElement('span');
    mic.className = 'mic';
    mic.dataset.testid = 'tile-mic';
    mic.innerHTML = MIC_ON + MIC_OFF;
    const name = document.createElement('span');
    name.className = 'name';
    name.dataset.testid = 'tile-name';
    name.textContent = local ? 'You' : userID;
    name.title = userID;
    const level = document.createElement('span');
    level.className = 'level';
    level.dataset.testid = 'tile-level';
    level.append(document.createElement('span'));
    badge.append(mic, name, level);

    tile.append(view, avatar, state, badge);
    // Remote people first; your own tile stays last (or floats as picture-in-picture).
    const localTile = this.container.querySelector('.tile.local');
    if (!local && localTile) this.container.insertBefore(tile, localTile);
    else this.container.append(tile);
    this.tiles.set(userID, tile);
    this.updateCount();
    return tile;
  }

  has(userID) {
    return this.tiles.has(userID);
  }

  /** UserIDs of tiles still ringing (invited, not answered). */
  pending() {
    return [...this.tiles.entries()].filter(([, t]) => t.dataset.joined === 'false').map(([id]) => id);
  }

  setJoined(userID, joined) {
    const tile = this.tiles.get(userID);
    if (tile) tile.dataset.joined = String(joined);
  }

  setAudio(userID, on) {
    const tile = this.tiles.get(userID);
    if (!tile) return;
    tile.dataset.audio = on ? 'on' : 'off';
    if (!on) this.setLevel(userID, 0);
  }

  setVideo(userID, on) {
    const tile = this.tiles.get(userID);
    if (tile) tile.dataset.video = on ? 'on' : 'off';
  }

  /** Voice level 0–100 as a bar, and a green ring while the person is talking. */
  setLevel(userID, level) {
    const tile = this.tiles.get(userID);
    if (!tile) return;
    const value = Math.max(0, Math.min(100, Number(level) || 0));
    tile.dataset.level = String(value);
    tile.querySelector('.level > span').style.width = `${value}%`;
    tile.classList.toggle('speaking', value >= 15 && tile.dataset.audio === 'on');
  }

  remove(userID) {
    const tile = this.tiles.get(userID);
    if (!tile) return;
    tile.remove();
    this.tiles.delete(userID);
    this.updateCount();
  }

  clear() {
    for (const tile of this.tiles.values()) tile.remove();
    this.tiles.clear();
    this.updateCount();
  }

  updateCount() {
    this.container.dataset.count = String(this.tiles.size);
  }
}
