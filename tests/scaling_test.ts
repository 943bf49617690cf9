import assert from "node:assert/strict";
import {
  fitFamily,
  fitForm,
  type Form,
  levenbergMarquardt,
  linearLog,
  logitLinearLog,
  looRmse,
  RECALL_FORMS,
  saturatingPower,
  saturatingPowerFloor,
} from "../reports/analysis/scaling.ts";
import { seededRandom } from "../engine/random.ts";

const XS = [-3, -2.5, -2, -1.6, -1.2, -0.8, -0.5, -0.25];

/** Data from a form with Gaussian-ish noise of standard deviation `sd` (seeded). */
function generate(form: Form, p: number[], sd: number, seed = 1): number[] {
  const r = seededRandom(seed);
  return XS.map((x) => {
    const noise = (r() + r() + r() + r() - 2) * Math.sqrt(3) * sd; // sd of a sum of 4 uniforms
    return form.predict(p, x) + noise;
  });
}

function near(actual: number, expected: number, tol: number, what: string) {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (±${tol})`);
}

Deno.test("linear-log recovers its parameters", () => {
  const fit = fitForm(linearLog, XS, generate(linearLog, [0.9, 0.15], 0.005))!;
  near(fit.params[0], 0.9, 0.01, "a");
  near(fit.params[1], 0.15, 0.01, "b");
  assert.ok(fit.converged);
});

Deno.test("logit-linear-log recovers its parameters", () => {
  const fit = fitForm(logitLinearLog, XS, generate(logitLinearLog, [1.5, 1.2], 0.005))!;
  near(fit.params[0], 1.5, 0.08, "a");
  near(fit.params[1], 1.2, 0.05, "b");
  assert.ok(fit.converged);
});

Deno.test("saturating power recovers A and alpha", () => {
  const fit = fitForm(saturatingPower, XS, generate(saturatingPower, [0.15, 0.35], 0.003))!;
  near(fit.params[0], 0.15, 0.01, "A");
  near(fit.params[1], 0.35, 0.02, "alpha");
  assert.ok(fit.converged);
});

Deno.test("saturating power with a floor recovers A, alpha and E", () => {
  const ys = generate(saturatingPowerFloor, [0.1, 0.5, 0.15], 0.002);
  const fit = fitForm(saturatingPowerFloor, XS, ys)!;
  near(fit.params[0], 0.1, 0.015, "A");
  near(fit.params[1], 0.5, 0.05, "alpha");
  near(fit.params[2], 0.15, 0.02, "E");
  assert.ok(fit.converged);
});

Deno.test("Levenberg–Marquardt stops on its rules from a poor start", () => {
  const ys = XS.map((x) => saturatingPower.predict([0.2, 0.4], x));
  const sol = levenbergMarquardt(saturatingPower, XS, ys, [1, 2]);
  assert.ok(sol.converged, "converged");
  assert.ok(sol.iterations < 200, `iterations ${sol.iterations}`);
  near(sol.params[0], 0.2, 1e-6, "A");
  near(sol.params[1], 0.4, 1e-6, "alpha");
  near(sol.rss, 0, 1e-16, "rss");
});

Deno.test("leave-one-out picks the generating form", () => {
  const cases: [Form, number[]][] = [
    [saturatingPowerFloor, [0.1, 0.6, 0.3]],
    [logitLinearLog, [2.5, 1.6]],
    [linearLog, [0.8, 0.1]],
  ];
  for (const [form, p] of cases) {
    const ys = generate(form, p, 0.002, 5);
    const fam = fitFamily(XS, ys, RECALL_FORMS);
    assert.equal(fam.chosen?.form.name, form.name, `data from ${form.name}`);
    assert.equal(fam.fits[0].form.name, form.name);
    assert.ok(fam.fits[0].looRmse! < 0.01, `loo ${fam.fits[0].looRmse}`);
  }
});

Deno.test("too few points: no fit and no LOO error", () => {
  assert.deepEqual(fitFamily([-2, -1], [0.2, 0.4], RECALL_FORMS), { fits: [], chosen: null });
  assert.equal(looRmse(saturatingPowerFloor, [-3, -2, -1], [0.1, 0.2, 0.3]), null);
});

Deno.test("analytic Jacobians match central finite differences", () => {
  const cases: [Form, number[]][] = [
    [linearLog, [0.7, 0.2]],
    [logitLinearLog, [1.1, 0.9]],
    [saturatingPower, [0.3, 0.45]],
    [saturatingPowerFloor, [0.2, 0.7, 0.1]],
  ];
  for (const [form, p] of cases) {
    for (const x of [-2.5, -1, -0.1]) {
      const j = form.jacobian(p, x);
      p.forEach((_, k) => {
        const h = 1e-6;
        const up = p.map((v, i) => (i === k ? v + h : v));
        const down = p.map((v, i) => (i === k ? v - h : v));
        const numeric = (form.predict(up, x) - form.predict(down, x)) / (2 * h);
        near(j[k], numeric, 1e-7, `${form.name} ∂/∂${form.params[k]} at x=${x}`);
      });
    }
  }
});

Deno.test("formulas write each fitted sign once (a negative slope or exponent is not '+ -' or '−−')", () => {
  assert.equal(linearLog.formula([0.5, -0.25], 1e18), "y = 0.5 − 0.25·log10(C/1.00e+18)");
  assert.equal(linearLog.formula([0.5, 0.25], 1e18), "y = 0.5 + 0.25·log10(C/1.00e+18)");
  assert.equal(
    saturatingPower.formula([0.3, -0.1092], 1e18),
    "1 − y = 0.3·(C/1.00e+18)^(0.1092)",
  );
  assert.equal(
    saturatingPowerFloor.formula([0.3, 0.5, 0.02], 1e18),
    "1 − y = 0.02 + 0.3·(C/1.00e+18)^(−0.5)",
  );
});
