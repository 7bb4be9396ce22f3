# Written by python -m helpers.course expected from the executed build; do not edit.
test = {'name': 'ex1',
 'points': None,
 'suites': [{'cases': [{'name': 'ex1 smallest_condition',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                '>>> close(smallest_condition, '
                                'json.loads(\'"FOXL2+HOXB9"\'), 0)\n'
                                'True',
                        'hidden': True,
                        'points': 1,
                        'locked': False},
                       {'name': 'ex1 smallest_n_cells',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                ">>> close(smallest_n_cells, json.loads('80'), 0)\n"
                                'True',
                        'hidden': False,
                        'points': 1,
                        'locked': False}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
