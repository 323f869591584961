// The 3D view: a three.js scene showing a job's mesh GLB (vertex colours when it has them, or
// coloured by per-vertex support on request) with the input points overlaid. It renders on
// demand (after a load, a toggle, a resize or a camera move), which keeps software WebGL cheap.
// The `data-state` attribute of the container says where it is: empty, loading, ready, error.

import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';

const BACKGROUND = 0xf4f5f7;
const MESH_GREY = 0xb8bec8;
const POINT_COLOUR = 0xe4572e;
const POINT_SIZE_OF_RADIUS = 0.016;
const FIT_MARGIN = 1.15;
// Support in local point spacings -> colour: blue where the points are (within one spacing, as
// metrics.support counts), through yellow at two, to red at four and beyond (a closure).
const SUPPORT_RAMP = [
  [0, new THREE.Color().setRGB(0.16, 0.45, 0.85, THREE.SRGBColorSpace)],
  [1, new THREE.Color().setRGB(0.16, 0.45, 0.85, THREE.SRGBColorSpace)],
  [2, new THREE.Color().setRGB(0.98, 0.80, 0.18, THREE.SRGBColorSpace)],
  [4, new THREE.Color().setRGB(0.85, 0.16, 0.14, THREE.SRGBColorSpace)],
];

function rampColour(spacings, target) {
  const last = SUPPORT_RAMP.length - 1;
  if (!(spacings > SUPPORT_RAMP[0][0])) return target.copy(SUPPORT_RAMP[0][1]);
  if (spacings >= SUPPORT_RAMP[last][0]) return target.copy(SUPPORT_RAMP[last][1]);
  let i = 1;
  while (spacings > SUPPORT_RAMP[i][0]) i += 1;
  const [s0, c0] = SUPPORT_RAMP[i - 1];
  const [s1, c1] = SUPPORT_RAMP[i];
  return target.copy(c0).lerp(c1, (spacings - s0) / (s1 - s0));
}

function supportColours(support) {
  const colours = new Float32Array(support.count * 3);
  const colour = new THREE.Color();
  for (let i = 0; i < support.count; i += 1) {
    rampColour(support.getX(i), colour).toArray(colours, i * 3);
  }
  return new THREE.BufferAttribute(colours, 3);
}

function parseGlb(buffer) {
  return new Promise((resolve, reject) => {
    new GLTFLoader().parse(buffer, '', resolve, reject);
  });
}

function firstOf(root, kind) {
  let found = null;
  root.traverse((object) => { if (!found && object[kind]) found = object; });
  return found;
}

export class MeshViewer {
  constructor(container) {
    this.container = container;
    this.renderer = new THREE.WebGLRenderer({ antialias: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.renderer.setClearColor(BACKGROUND);
    container.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x6b6f78, 1.6));
    this.light = new THREE.DirectionalLight(0xffffff, 1.8);
    this.camera = new THREE.PerspectiveCamera(40, 1, 0.01, 100);
    this.camera.position.set(0, 0, 3);
    // A headlight a little above and to the right of the eye, wherever the camera goes.
    this.camera.add(this.light, this.light.target);
    this.light.position.set(0.5, 1, 0.8);
    this.light.target.position.set(0, 0, -1);
    this.scene.add(this.camera);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.addEventListener('change', () => this.render());
    this.mesh = null;
    this.points = null;
    this.meshColours = null;
    this.sphere = null;
    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
    this.setState('empty');
  }

  setState(state) {
    this.container.dataset.state = state;
  }

  resize() {
    const width = Math.max(1, this.container.clientWidth);
    const height = Math.max(1, this.container.clientHeight);
    this.renderer.setSize(width, height);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.render();
  }

  render() {
    this.renderer.render(this.scene, this.camera);
  }

  clear() {
    for (const object of [this.mesh, this.points]) {
      if (!object) continue;
      this.scene.remove(object);
      object.traverse((child) => {
        if (child.geometry) child.geometry.dispose();
        if (child.material) child.material.dispose();
      });
    }
    this.mesh = this.points = this.meshColours = this.sphere = null;
    this.render();
    this.setState('empty');
  }

  /** Show the mesh GLB in `buffer` (ArrayBuffer) and aim the camera at it, unless `signal`
   * aborted meanwhile (another job was opened). */
  async showMesh(buffer, signal = null) {
    this.setState('loading');
    const gltf = await parseGlb(buffer);
    if (signal && signal.aborted) return;
    const found = firstOf(gltf.scene, 'isMesh');
    if (!found) throw new Error('the GLB holds no mesh');
    const geometry = found.geometry;
    if (!geometry.attributes.normal) geometry.computeVertexNormals();
    this.meshColours = geometry.attributes.color || null;
    const side = found.material.side;
    found.material.dispose();
    found.material = new THREE.MeshStandardMaterial({
      color: this.meshColours ? 0xffffff : MESH_GREY,
      vertexColors: Boolean(this.meshColours),
      roughness: 0.75,
      metalness: 0.0,
      side,
    });
    this.mesh = gltf.scene;
    this.scene.add(this.mesh);
    this.fit();
    this.setState('ready');
  }

  /** Overlay the input points GLB in `buffer` (a POINTS primitive in the mesh's frame). */
  async showPoints(buffer, visible = true, signal = null) {
    const gltf = await parseGlb(buffer);
    if (signal && signal.aborted) return;
    const found = firstOf(gltf.scene, 'isPoints');
    if (!found) throw new Error('the GLB holds no points');
    const coloured = Boolean(found.geometry.attributes.color);
    found.material.dispose();
    const radius = this.sphere ? this.sphere.radius : 1;
    found.material = new THREE.PointsMaterial({
      size: radius * POINT_SIZE_OF_RADIUS,
      color: coloured ? 0xffffff : POINT_COLOUR,
      vertexColors: coloured,
    });
    this.points = gltf.scene;
    this.points.visible = visible;
    this.scene.add(this.points);
    this.render();
  }

  get hasSupport() {
    const found = this.mesh && firstOf(this.mesh, 'isMesh');
    return Boolean(found && found.geometry.attributes._support);
  }

  setPointsVisible(visible) {
    if (this.points) this.points.visible = visible;
    this.render();
  }

  /** Colour the surface by its per-vertex support (`_SUPPORT`), or back to its own colours. */
  setSupportColouring(enabled) {
    const found = this.mesh && firstOf(this.mesh, 'isMesh');
    if (!found || !found.geometry.attributes._support) return;
    const { geometry, material } = found;
    if (enabled) {
      geometry.setAttribute('color', supportColours(geometry.attributes._support));
    } else if (this.meshColours) {
      geometry.setAttribute('color', this.meshColours);
    } else {
      geometry.deleteAttribute('color');
    }
    const colours = enabled || Boolean(this.meshColours);
    material.vertexColors = colours;
    material.color.set(colours ? 0xffffff : MESH_GREY);
    material.needsUpdate = true;
    this.render();
  }

  /** Put the whole mesh in view, seen from the front and a little above. */
  fit() {
    const found = firstOf(this.mesh, 'isMesh');
    this.mesh.updateMatrixWorld(true);
    found.geometry.computeBoundingSphere();
    this.sphere = found.geometry.boundingSphere.clone().applyMatrix4(found.matrixWorld);
    const { center, radius } = this.sphere;
    const halfFov = THREE.MathUtils.degToRad(this.camera.fov / 2);
    const fitFov = this.camera.aspect < 1 ? Math.atan(Math.tan(halfFov) * this.camera.aspect) : halfFov;
    const distance = (radius * FIT_MARGIN) / Math.sin(fitFov);
    const direction = new THREE.Vector3(0.35, 0.3, 1).normalize();
    this.camera.position.copy(center).addScaledVector(direction, distance);
    this.camera.near = distance / 100;
    this.camera.far = distance * 100;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(center);
    this.controls.update();
    this.render();
  }

  /** Take the other viewer's camera (linked cameras in the compare view). */
  copyCamera(other) {
    this.camera.position.copy(other.camera.position);
    this.camera.quaternion.copy(other.camera.quaternion);
    this.camera.near = other.camera.near;
    this.camera.far = other.camera.far;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(other.controls.target);
    this.render();
  }
}

/** Link two viewers: moving either camera moves the other the same way. */
export function linkCameras(a, b) {
  let syncing = false;
  const follow = (source, target) => () => {
    if (syncing) return;
    syncing = true;
    target.copyCamera(source);
    syncing = false;
  };
  a.controls.addEventListener('change', follow(a, b));
  b.controls.addEventListener('change', follow(b, a));
}
