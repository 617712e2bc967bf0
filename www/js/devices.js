// Device picker: the camera and microphone selectors of the call screen, filled from the
// SDK's getCameras()/getMicrophones() and applied with switchDevice() (no renegotiation, so
// the other side sees no gap).

export class DevicePicker {
  /** `getSdk` returns the TRTCCalling instance (created after this picker). */
  constructor(cameraSelect, micSelect, getSdk, notices) {
    this.selects = { video: cameraSelect, audio: micSelect };
    this.getSdk = getSdk;
    this.notices = notices;
    for (const [deviceType, select] of Object.entries(this.selects)) {
      select.addEventListener('change', () => this.apply(deviceType, select.value));
    }
  }

  /** Re-reads the device lists; labels are only known once the page may use the devices. */
  async refresh() {
    const sdk = this.getSdk();
    if (!sdk) return;
    // Insecure pages have no device access at all; the SDK already reported it (60007).
    if (!window.isSecureContext) {
      this.fill(this.selects.video, [], 'Camera');
      this.fill(this.selects.audio, [], 'Microphone');
      return;
    }
    try {
      const [cameras, mics] = await Promise.all([sdk.getCameras(), sdk.getMicrophones()]);
      this.fill(this.selects.video, cameras, 'Camera');
      this.fill(this.selects.audio, mics, 'Microphone');
    } catch (err) {
      this.notices.error('Devices', err);
    }
  }

  fill(select, list, fallback) {
    const chosen = select.value;
    select.replaceChildren(...(list || []).map((d, i) => {
      const option = document.createElement('option');
      option.value = d.deviceId;
      option.textContent = d.label || `${fallback} ${i + 1}`;
      return option;
    }));
    if (!select.options.length) {
      const none = document.createElement('option');
      none.textContent = `No ${fallback.toLowerCase()} found`;
      none.value = '';
      select.append(none);
      select.disabled = true;
      return;
    }
    select.disabled = false;
    if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  }

  async apply(deviceType, deviceId) {
    if (!deviceId) return;
    try {
      await this.getSdk().switchDevice({ deviceType, deviceId });
    } catch (err) {
      this.notices.error(deviceType === 'video' ? 'Camera' : 'Microphone', err);
    }
  }
}
