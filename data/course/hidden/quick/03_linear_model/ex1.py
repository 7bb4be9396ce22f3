# Written by python -m helpers.course expected from the executed build; do not edit.
test = {'name': 'ex1',
 'points': None,
 'suites': [{'cases': [{'name': 'ex1 grid',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                '>>> close(grid, json.loads(\'{"0.01": {"10": '
                                '2.469037707045762, "2": 3.035191881752506, "20": '
                                '2.391841443670793, "40": 2.4754106011923303, "5": '
                                '2.867630211073724, "80": 2.903036859318082}, "0.1": '
                                '{"10": 2.4688290197133815, "2": 3.0351974794663223, '
                                '"20": 2.3909807085781583, "40": 2.470602792157922, '
                                '"5": 2.867641346853649, "80": 2.8629016971135055}, '
                                '"1.0": {"10": 2.4670826746140144, "2": '
                                '3.035256322057982, "20": 2.384252206416092, "40": '
                                '2.4356029706548417, "5": 2.867778775729546, "80": '
                                '2.630836780042404}, "10.0": {"10": 2.475160015369997, '
                                '"2": 3.0361058272410806, "20": 2.3935390126700935, '
                                '"40": 2.4010743913793076, "5": 2.8713013655130677, '
                                '"80": 2.414739777105905}}\'), (1e-06, 1e-06))\n'
                                'True',
                        'hidden': True,
                        'points': 1,
                        'locked': False},
                       {'name': 'ex1 best_k',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                ">>> close(best_k, json.loads('20'), 0)\n"
                                'True',
                        'hidden': False,
                        'points': 1,
                        'locked': False}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
