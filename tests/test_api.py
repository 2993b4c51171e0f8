"""The Python API an engineer finds: top-level names, every registered method without importing modules by hand."""
import importlib, subprocess, sys
import pytest
import crossmodal_course as cm
from crossmodal_course.results import METHOD_MODULES, load_methods

def test_import_is_light():
    code = "import sys, crossmodal_course; print(sorted(m for m in ('torch', 'numpy', 'pandas') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr

@pytest.mark.parametrize("name", sorted(cm.API))
def test_every_top_level_name_resolves(name):
    obj = getattr(cm, name)
    module = importlib.import_module("crossmodal_course." + cm.API[name])
    assert obj is getattr(module, name) and name in dir(cm)

def test_reproduce_is_the_function_not_a_module():
    from crossmodal_course import reproduce
    import crossmodal_course.results
    assert callable(reproduce) and cm.reproduce is crossmodal_course.results.reproduce

def test_methods_complete_in_a_fresh_process():
    "`cm.METHODS` holds every method of every module in METHOD_MODULES, with nothing imported by hand."
    code = ("import crossmodal_course as cm\n"
            "print(len(cm.METHODS), len({m['fn'].__module__ for m in cm.METHODS.values()}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    n_methods, n_modules = map(int, r.stdout.split())
    assert n_modules == len(METHOD_MODULES) and n_methods == len(load_methods()) >= 12, r.stderr

@pytest.mark.parametrize("module", METHOD_MODULES)
def test_every_listed_method_module_imports_and_registers(module):
    importlib.import_module(module)
    assert any(m["fn"].__module__ == module for m in load_methods().values())

def test_a_missing_method_module_raises():
    with pytest.raises(ModuleNotFoundError, match="crossmodal_course.nosuch"):
        load_methods(METHOD_MODULES + ("crossmodal_course.nosuch",))
