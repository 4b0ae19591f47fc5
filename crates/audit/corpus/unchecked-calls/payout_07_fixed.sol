pragma solidity ^0.7.4;

// A failed payment reverts, restoring the salary.
contract Payroll {
    mapping(address => uint256) public salary;
    address public employer;

    constructor() {
        employer = msg.sender;
    }

    function fund(address employee) external payable {
        require(msg.sender == employer, "employer");
        salary[employee] += msg.value;
    }

    function collect() external {
        uint256 amount = salary[msg.sender];
        salary[msg.sender] = 0;
        (bool success, ) = payable(msg.sender).call{value: amount}("");
        require(success, "payment failed");
    }
}
